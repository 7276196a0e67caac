"""The VLM's explanation: attention of the answer's label token over the image tokens, projected back onto
the patch. The vlm adapter computes the map (``explain_image``, with the class probabilities of the same pass;
``explain_images`` for a batch); this module checks and sizes it."""

from __future__ import annotations

import numpy as np
from PIL import Image

from histoapp.explain.base import Explainer, Explanation


def explain_vlm(adapter, image: Image.Image) -> np.ndarray:
    """(H, W) map in [0, 1] at ``image``'s size, from the adapter's attention pass."""
    return explain_vlm_with_probabilities(adapter, image, probabilities=False)[1]


def explain_vlm_with_probabilities(
    adapter, image: Image.Image, probabilities: bool = True
) -> tuple[dict[str, float] | None, np.ndarray]:
    """(class -> probability, map at ``image``'s size): one forward pass where the adapter can (``explain_image``)."""
    fn = getattr(adapter, "explain_image", None)
    if fn is None:
        raise TypeError(f"{type(adapter).__name__} has no explain_image(image): not a vision-language model adapter")
    probs, amap = fn(image, probabilities=probabilities)
    return probs, _checked(amap, image)


def explain_vlm_many(adapter, images: list[Image.Image]) -> list[tuple[dict[str, float], np.ndarray]]:
    """``explain_vlm_with_probabilities`` for several images, in one forward pass where the adapter can
    (``explain_images``)."""
    fn = getattr(adapter, "explain_images", None)
    if fn is None:
        return [explain_vlm_with_probabilities(adapter, im) for im in images]
    return [(probs, _checked(amap, im)) for (probs, amap), im in zip(fn(images), images, strict=True)]


def _checked(amap, image: Image.Image) -> np.ndarray:
    amap = np.asarray(amap, dtype=np.float32)
    if amap.ndim != 2 or amap.size == 0:
        raise ValueError(f"the attention map has shape {amap.shape}; expected a 2-D map")
    amap = np.nan_to_num(amap)
    lo, hi = float(amap.min()), float(amap.max())
    amap = (amap - lo) / (hi - lo) if hi > lo else np.zeros_like(amap)
    if amap.shape != (image.height, image.width):
        amap = np.asarray(Image.fromarray(amap, mode="F").resize(image.size, Image.BILINEAR))
    return np.clip(amap, 0.0, 1.0)


def _softmax(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


class AttentionExplainer(Explainer):
    """A VLM's explanation: its label-token attention over the image tokens (not class-specific)."""

    def explain(self, image: Image.Image) -> Explanation:
        return self.explain_many([image])[0]

    def explain_many(self, images: list[Image.Image]) -> list[Explanation]:
        import torch

        adapter = self.loaded.adapter
        # Gradient-free; ordinary tensors rather than inference-mode ones, as the adapter's attention pass expects.
        with torch.inference_mode(False), torch.no_grad():
            if hasattr(adapter, "explain_scored"):  # logits and features of the same pass, for the trust checks
                scored = adapter.explain_scored(images)
                return [
                    Explanation(
                        _softmax(logits),
                        _checked(amap, im),
                        None,
                        "label-token attention over the image tokens",
                        logits,
                        features,
                    )
                    for (logits, features, amap), im in zip(scored, images, strict=True)
                ]
            results = explain_vlm_many(adapter, images)
        return [
            Explanation(
                np.array([by_class[c] for c in self.loaded.classes], dtype=np.float64),
                heatmap,
                None,
                "label-token attention over the image tokens",
            )
            for by_class, heatmap in results
        ]

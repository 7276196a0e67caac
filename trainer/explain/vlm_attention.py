"""The VLM's explanation: attention of the answer's label token over the image tokens, projected back onto
the patch. The vlm adapter computes the maps with the class logits and features of the same pass
(``explain_scored``, one pass for a batch); this module checks and sizes them."""

from __future__ import annotations

import numpy as np
from PIL import Image

from trainer.explain.base import Explainer, Explanation

DESCRIPTION = "label-token attention over the image tokens"


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


class AttentionExplainer(Explainer):
    """A VLM's explanation: its label-token attention over the image tokens (not class-specific)."""

    def explain_many(self, images: list[Image.Image]) -> list[Explanation]:
        import torch

        from trainer.predict import eval_transform

        adapter = self.loaded.adapter
        if not hasattr(adapter, "explain_scored"):
            raise TypeError(
                f"{type(adapter).__name__} has no explain_scored(images): not a vision-language model adapter"
            )
        # Gradient-free; ordinary tensors rather than inference-mode ones, as the adapter's attention pass expects.
        with torch.inference_mode(False), torch.no_grad():
            # The plain prediction's transform (stain normalisation included) when the model has a fixed input size.
            tf = eval_transform(self.loaded) if adapter.input_size else None
            scored = adapter.explain_scored(images, transform=tf)
        return [
            Explanation(_checked(amap, im), None, DESCRIPTION, logits, features)
            for (logits, features, amap), im in zip(scored, images, strict=True)
        ]

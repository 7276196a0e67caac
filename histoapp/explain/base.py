"""One interface for every explanation: an ``Explainer`` turns one image into the class probabilities and a
heatmap from the same forward pass. Each model family has one implementation (``cam.CamExplainer`` for the CNNs,
``vlm_attention.AttentionExplainer`` for the VLMs), registered in ``EXPLAINERS``; callers never ask which family
they hold."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from PIL import Image

# model family -> "module:class", imported on first use (the CAM stack is not loaded for a VLM, nor at app start).
EXPLAINERS: dict[str, str] = {
    "cnn": "histoapp.explain.cam:CamExplainer",
    "vlm": "histoapp.explain.vlm_attention:AttentionExplainer",
}


@dataclass
class Explanation:
    probs: np.ndarray  # (num_classes,) in the model's class order, from the pass that made the map
    heatmap: np.ndarray  # (H, W) in [0, 1] at the image's size
    target: int | None  # the class the map explains (None: the map is not class-specific)
    description: str  # what the map shows, for the reader
    # The same pass's class logits and penultimate features, for the trust checks (trainer.trust); None when the
    # family's explainer does not give them (the prediction then takes its own pass).
    logits: np.ndarray | None = None
    features: np.ndarray | None = None


class Explainer(ABC):
    """Explains one loaded model (``histoapp.models.registry.LoadedModel``: adapter, classes, input size, device)."""

    def __init__(self, loaded):
        self.loaded = loaded

    @abstractmethod
    def explain(self, image: Image.Image, **options) -> Explanation:
        """Probabilities and heatmap of ``image`` (RGB); ``options`` are the family's own (CAM method, target)."""

    def explain_many(self, images: list[Image.Image], **options) -> list[Explanation]:
        """``explain`` for each image; a family that can batch the pass overrides this (same results)."""
        return [self.explain(im, **options) for im in images]


def explainer_for(loaded) -> Explainer:
    family = loaded.adapter.family
    if family not in EXPLAINERS:
        raise ValueError(f"no explanation for model family {family!r}; available: {', '.join(sorted(EXPLAINERS))}")
    module, cls = EXPLAINERS[family].split(":")
    return getattr(importlib.import_module(module), cls)(loaded)

"""One interface for every explanation: an ``Explainer`` turns a batch of images into one ``Explanation`` each
(its heatmap and the class logits and features of the same forward pass). Each model family implements the one
method, ``explain_many`` (``cam.CamExplainer`` for the CNNs, ``vlm_attention.AttentionExplainer`` for the VLMs),
registered in ``EXPLAINERS``; callers never ask which family they hold. The app makes the prediction with its
trust verdict from that pass (``histoapp.models.inference.explain_many``); ``trainer explain-eval`` measures the
maps (``trainer.explain.faithfulness``, ``sanity``, ``pointing``)."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from PIL import Image

from trainer.trust.calibration import softmax

# model family -> "module:class", imported on first use (the CAM stack is not loaded for a VLM, nor at app start).
EXPLAINERS: dict[str, str] = {
    "cnn": "trainer.explain.cam:CamExplainer",
    "vlm": "trainer.explain.vlm_attention:AttentionExplainer",
}


@dataclass
class Explanation:
    heatmap: np.ndarray  # (H, W) in [0, 1] at the image's size
    target: int | None  # the class the map explains (None: the map is not class-specific)
    description: str  # what the map shows, for the reader
    # The pass's class logits (num_classes,) and penultimate features (D,): the prediction and its trust checks
    # (trainer.trust) are judged on them, so the map and the answer come from one pass. ``features`` is None
    # when the family's pass does not give them (the prediction then takes its own pass).
    logits: np.ndarray
    features: np.ndarray | None = None

    @property
    def probs(self) -> np.ndarray:
        """The model's own (uncalibrated) probabilities in that pass, in its class order."""
        return softmax(self.logits)


class Explainer(ABC):
    """Explains one model: anything with ``adapter``, ``classes``, ``input_size``, ``meta`` and (optionally)
    ``device``: a ``trainer.models.Checkpoint`` or the app's ``LoadedModel``."""

    def __init__(self, loaded):
        self.loaded = loaded

    @abstractmethod
    def explain_many(self, images: list[Image.Image], **options) -> list[Explanation]:
        """One ``Explanation`` per image (RGB), in order, batched where the family can; each is the image's own,
        as if explained alone. ``options`` are the family's own (CAM method, target)."""


def explainer_for(loaded) -> Explainer:
    family = loaded.adapter.family
    if family not in EXPLAINERS:
        raise ValueError(f"no explanation for model family {family!r}; available: {', '.join(sorted(EXPLAINERS))}")
    module, cls = EXPLAINERS[family].split(":")
    return getattr(importlib.import_module(module), cls)(loaded)

"""Reference "explanations" that do not look at the model, for the checks to be measured against: an edge detector
(the Sobel gradient magnitude of the image: Adebayo et al. 2018 show that such a map can look like a saliency map
and pass a visual inspection, while the sanity check must flag it) and uniform noise (the faithfulness scores'
chance level)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

SOBEL, RANDOM = "Sobel edges", "random"
BASELINES = (SOBEL, RANDOM)


def _unit(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return ((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)).astype(np.float32)


def sobel(images: Sequence[Image.Image]) -> list[np.ndarray]:
    """The Sobel gradient magnitude of each image's grey levels, in [0, 1] at the image's size."""
    from scipy import ndimage

    out = []
    for im in images:
        grey = np.asarray(im.convert("L"), dtype=np.float32)
        out.append(_unit(np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1))))
    return out


def random_maps(images: Sequence[Image.Image], seed: int = 0) -> list[np.ndarray]:
    """Uniform noise in [0, 1] at each image's size (reproducible per ``seed`` and position)."""
    return [
        np.random.default_rng(seed + k).random((im.height, im.width)).astype(np.float32) for k, im in enumerate(images)
    ]


def baseline_maps(method: str, images: Sequence[Image.Image]) -> list[np.ndarray]:
    if method == SOBEL:
        return sobel(images)
    if method == RANDOM:
        return random_maps(images)
    raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(BASELINES)}")

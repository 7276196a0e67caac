"""A heatmap blended onto the patch: ``opacity`` 0 shows the patch, 1 the heatmap alone."""

from __future__ import annotations

import numpy as np
from PIL import Image


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8 RGB with the jet colormap (the Grad-CAM papers' convention)."""
    import cv2  # comes with grad-cam; imported here so the app starts without it

    mask = np.uint8(255 * np.clip(np.nan_to_num(heatmap), 0.0, 1.0))
    return cv2.cvtColor(cv2.applyColorMap(mask, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def overlay(image: Image.Image, heatmap: np.ndarray, opacity: float = 0.5) -> Image.Image:
    """The patch with ``heatmap`` (resized to it when needed) blended on top; the result has the patch's size."""
    if not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    image = image.convert("RGB")
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (H, W), got shape {heatmap.shape}")
    if heatmap.shape != (image.height, image.width):
        heatmap = np.asarray(Image.fromarray(heatmap, mode="F").resize(image.size, Image.BILINEAR))
    base = np.asarray(image, dtype=np.float32)
    blended = (1.0 - opacity) * base + opacity * colorize(heatmap).astype(np.float32)
    return Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8), "RGB")

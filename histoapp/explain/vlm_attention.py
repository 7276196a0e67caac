"""The VLM's explanation: attention of the answer's label token over the image tokens, projected back onto
the patch. The vlm adapter computes the map (``attention_map``); this module checks and sizes it."""
from __future__ import annotations

import numpy as np
from PIL import Image


def explain_vlm(adapter, image: Image.Image) -> np.ndarray:
    """(H, W) map in [0, 1] at ``image``'s size, from ``adapter.attention_map(image)``."""
    fn = getattr(adapter, "attention_map", None)
    if fn is None:
        raise TypeError(f"{type(adapter).__name__} has no attention_map(image): not a vision-language model adapter")
    amap = np.asarray(fn(image), dtype=np.float32)
    if amap.ndim != 2 or amap.size == 0:
        raise ValueError(f"attention_map returned shape {amap.shape}; expected a 2-D map")
    amap = np.nan_to_num(amap)
    lo, hi = float(amap.min()), float(amap.max())
    amap = (amap - lo) / (hi - lo) if hi > lo else np.zeros_like(amap)
    if amap.shape != (image.height, image.width):
        amap = np.asarray(Image.fromarray(amap, mode="F").resize(image.size, Image.BILINEAR))
    return np.clip(amap, 0.0, 1.0)

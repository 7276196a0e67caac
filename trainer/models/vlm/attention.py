"""Where the model looks: the attention of the answer position (the last prompt token, which predicts the
label word) over the image tokens, averaged over heads and language-model layers, laid out on the image's
patch grid and projected back onto the image. Computed with eager attention (the fused kernels do not
return attention weights)."""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def eager_attention(model):
    """Switch the transformers model to eager attention for one forward pass, then back. One pass at a time per
    model: a second thread switching back mid-pass would leave the first without attention weights."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    with _locks_guard:
        lock = _locks.setdefault(id(base), threading.Lock())
    with lock:
        before = base.config._attn_implementation
        if before != "eager":
            base.set_attn_implementation("eager")
        try:
            yield base
        finally:
            if before != "eager":
                base.set_attn_implementation(before)


def image_grid(adapter, inputs: dict, n_tokens: int) -> tuple[int, int]:
    """(rows, cols) of the image tokens of the (last) image."""
    if "image_grid_thw" in inputs:  # Qwen2-VL: patches merged merge x merge into one token
        t, h, w = (int(v) for v in inputs["image_grid_thw"][-1])
        merge = adapter.model.config.vision_config.spatial_merge_size
        return h // merge, w // merge
    side = int(round(math.sqrt(n_tokens)))  # Idefics3: a square tile of image_seq_len tokens
    if side * side != n_tokens:
        raise ValueError(f"{n_tokens} image tokens do not form a square grid")
    return side, side


@torch.no_grad()
def attention_forward(adapter, inputs: dict):
    """One eager forward pass returning the attention weights and the last position's logits."""
    with eager_attention(adapter.model):
        out = adapter.model(**inputs, output_attentions=True, use_cache=False, logits_to_keep=1)
    if not out.attentions:
        raise RuntimeError("the model returned no attention weights")
    return out


def project_attention(adapter, inputs: dict, attentions, image_size: tuple[int, int], row: int = 0) -> np.ndarray:
    """(H, W) float32 map in [0, 1] for the batch's ``row`` image, of ``image_size`` (W, H): the answer
    position's attention over the image tokens, on the central square crop the model saw (the evaluation
    transform); 0 outside it."""
    ids = inputs["input_ids"][row]
    positions = (ids == adapter.image_token_id).nonzero().flatten()
    if len(positions) == 0:
        raise RuntimeError("no image tokens in the prompt")
    rows, cols = image_grid(adapter, inputs, len(positions))
    positions = positions[-rows * cols :]  # with image splitting (SmolVLM) the global view comes last
    # (layers, heads, key) attention of the last query position, mean over heads and layers.
    weights = torch.stack([a[row, :, -1, :].float() for a in attentions]).mean(dim=(0, 1))[
        positions.to(attentions[0].device)
    ]
    grid = weights.reshape(1, 1, rows, cols)
    width, height = image_size
    side = min(width, height)  # Resize(shorter side) + CenterCrop: the crop is the central side x side square
    crop = F.interpolate(grid, size=(side, side), mode="bilinear", align_corners=False)[0, 0]
    lo, hi = crop.min(), crop.max()
    crop = (crop - lo) / (hi - lo) if hi > lo else torch.zeros_like(crop)
    full = torch.zeros((height, width))
    top, left = (height - side) // 2, (width - side) // 2
    full[top : top + side, left : left + side] = crop.cpu()
    return full.clamp(0, 1).numpy().astype(np.float32)

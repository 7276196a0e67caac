"""Where the map points vs where the lesion is: the energy-based pointing game of Wang et al., "Score-CAM"
(CVPR workshops 2020, section 4.3): the share of the map's mass inside the lesion's mask,
sum(map * mask) / sum(map). A map spread evenly scores the mask's share of the image (``chance``).

IDC gives one label per 50 x 50 patch, so one patch's mask is all or nothing and its pointing says nothing about
the map. Mosaics do: ``idc_mosaics`` stitches ``side`` x ``side`` neighbouring patches of one patient's slide
(their names give where each was cut) into one image whose coarse tumour mask is the malignant patches' squares,
keeping the mosaics that hold both classes. The model explains the mosaic at the scale it was trained at
(``at_scale``: the input size times ``side``, so each patch is seen as large as alone); a CNN's global pooling
takes any size, a VLM's processor resizes the image to its own. This is built from the patch names here (the
slide package of issue 26 was not on this branch); any annotated region can be passed as a mask instead."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image


def energy_pointing(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """The share of ``heatmap``'s mass inside ``mask`` (same shape, true = lesion); NaN for an all-zero map."""
    heatmap, mask = np.asarray(heatmap, dtype=np.float64), np.asarray(mask, dtype=bool)
    if heatmap.shape != mask.shape:
        raise ValueError(f"map {heatmap.shape} and mask {mask.shape} differ in shape")
    total = np.clip(heatmap, 0, None).sum()
    return float(np.clip(heatmap, 0, None)[mask].sum() / total) if total > 0 else float("nan")


@dataclass
class Mosaic:
    image: Image.Image
    mask: np.ndarray  # (H, W) bool: the malignant patches' squares
    patient: str
    x: int  # the top-left patch's slide coordinates
    y: int

    @property
    def chance(self) -> float:
        """What a uniform map scores: the mask's share of the mosaic."""
        return float(self.mask.mean())


def idc_mosaics(records: Sequence, side: int = 3, limit: int | None = None, seed: int = 0) -> list[Mosaic]:
    """Mosaics of ``side`` x ``side`` neighbouring patches (records with ``x``, ``y`` slide coordinates and a
    patch ``label``) holding both classes, non-overlapping, shuffled with ``seed``, at most ``limit``."""
    from trainer.context import tile_step
    from trainer.data.images import load_rgb

    by_patient: dict[str, dict[tuple[int, int], object]] = defaultdict(dict)
    for r in records:
        if r.x is not None and r.y is not None:
            by_patient[r.patient_id][(r.x, r.y)] = r
    windows = []
    for pid, where in sorted(by_patient.items()):
        step = tile_step([x for x, _ in where], [y for _, y in where])
        if step is None:
            continue
        used: set[tuple[int, int]] = set()
        for x0, y0 in sorted(where):
            cells = [(x0 + i * step, y0 + j * step) for j in range(side) for i in range(side)]
            if any(c not in where or c in used for c in cells):
                continue
            labels = {int(where[c].label) for c in cells}
            if labels == {0, 1}:
                used.update(cells)
                windows.append((pid, x0, y0, [where[c] for c in cells]))
    order = np.random.default_rng(seed).permutation(len(windows))
    out = []
    for k in order[: limit if limit is not None else len(order)]:
        pid, x0, y0, cells = windows[k]
        tiles = [load_rgb(r.path) for r in cells]
        w, h = tiles[0].size
        image = Image.new("RGB", (w * side, h * side))
        mask = np.zeros((h * side, w * side), dtype=bool)
        for n, (tile, r) in enumerate(zip(tiles, cells, strict=True)):
            i, j = n % side, n // side
            image.paste(tile.resize((w, h)), (i * w, j * h))
            mask[j * h : (j + 1) * h, i * w : (i + 1) * w] = bool(r.label)
        out.append(Mosaic(image, mask, pid, x0, y0))
    return out


def at_scale(model, side: int):
    """``model`` reading ``side`` x ``side`` patches at the scale it reads one (input size times ``side``)."""
    return dataclasses.replace(model, input_size=model.input_size * side)

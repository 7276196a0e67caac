"""Synthetic BreakHis-like data: the canonical layout and naming, H&E-like colours, and a learnable
difference between classes (malignant: denser, larger, irregular, darker nuclei). Tests and the offline
demo use it; a few hundred 96 px patches are written in a few seconds."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from trainer.data.breakhis import BreakHisName, canonical_relpath
from trainer.data.records import MAGNIFICATIONS, SUBTYPE_LABEL, SUBTYPES

# Nucleus radius scales with magnification (in pixels for a 96 px patch at 40X).
_MAG_SCALE = {"40X": 1.0, "100X": 1.5, "200X": 2.1, "400X": 3.0}


def render_patch(
    rng: np.random.Generator, size: int | tuple[int, int], malignant: bool, subtype_idx: int, mag: str
) -> Image.Image:
    """One H&E-like patch. ``size``: side length, or ``(width, height)`` (BreakHis patches are 700x460)."""
    w, h = (size, size) if isinstance(size, int) else size
    side = min(w, h)
    # Eosin-pink stroma with a per-subtype tint, slightly varying per patch.
    base = (
        np.array([236, 190, 214], dtype=np.float32)
        + rng.normal(0, 6, 3)
        + (subtype_idx - 3.5) * np.array([1.5, -1.0, 0.5])
    )
    arr = np.clip(base + rng.normal(0, 9, (h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(img)
    scale = _MAG_SCALE[mag] * side / 96
    area = w * h
    if malignant:
        density, r_mean, irregular, dark = 0.0030, 2.6, 0.45, 1.0
    else:
        density, r_mean, irregular, dark = 0.0014, 1.9, 0.10, 0.75
        # Benign tissue keeps its architecture: a gland or two (a pale lumen ringed by small, regular nuclei).
        for _ in range(int(rng.integers(1, 3))):
            gx, gy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
            gr = rng.uniform(0.10, 0.18) * side * min(1.0, _MAG_SCALE[mag] / 2)
            draw.ellipse([gx - gr, gy - gr, gx + gr, gy + gr], fill=(247, 232, 240))
            nr = max(1.0, 0.55 * r_mean * min(scale, 2.0))
            ring = max(6, int(2 * math.pi * gr / (4.0 * nr)))
            for t in np.linspace(0, 2 * math.pi, ring, endpoint=False):
                cx, cy = gx + (gr + nr) * math.cos(t), gy + (gr + nr) * math.sin(t)
                colour = tuple(int(np.clip(c / dark, 0, 255)) for c in (70, 40, 120))
                draw.ellipse([cx - nr, cy - nr, cx + nr, cy + nr], fill=colour)
    n = max(3, int(rng.poisson(density * area / max(scale, 1.0) ** 1.2)))
    for _ in range(n):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = max(1.0, rng.normal(r_mean, 0.35 * r_mean) * scale)
        rx = r * (1 + rng.uniform(-irregular, irregular))
        ry = r * (1 + rng.uniform(-irregular, irregular))
        shade = rng.uniform(0.85, 1.15) * dark
        colour = tuple(int(np.clip(c / shade, 0, 255)) for c in (70, 40, 120))  # haematoxylin purple
        if malignant and rng.random() < 0.5:
            # Irregular (lobulated) outline drawn as a jagged polygon.
            k = 9
            angles = np.sort(rng.uniform(0, 2 * math.pi, k))
            rad = rng.uniform(0.6, 1.3, k)
            pts = [(cx + rx * q * math.cos(a), cy + ry * q * math.sin(a)) for a, q in zip(angles, rad, strict=True)]
            draw.polygon(pts, fill=colour)
        else:
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=colour)
    return img.filter(ImageFilter.GaussianBlur(radius=0.6))


_patch = render_patch  # the earlier private name


# Written at the root of every generated set: the official BreakHis counts (and floors) are for real data only.
GENERATED_MARKER = "GENERATED.txt"


def is_generated(root: str | Path) -> bool:
    return (Path(root) / GENERATED_MARKER).is_file()


def generate(
    root: str | Path,
    *,
    patients_per_subtype: int = 2,
    images_per_magnification: int = 3,
    size: int | tuple[int, int] = 96,
    seed: int = 0,
    fmt: str = "png",
) -> Path:
    """Write a BreakHis-like dataset below ``root`` and return ``root``.

    Layout: ``root/BreaKHis_v1/histology_slides/breast/<benign|malignant>/SOB/<subtype>/<patient>/<mag>/<file>``.
    Every patient has images at all four magnifications. ``size``: side, or ``(width, height)``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for si, sub in enumerate(SUBTYPES):
        for p in range(patients_per_subtype):
            year = "14" if p % 2 == 0 else "13"
            slide = f"{10000 + 100 * si + p}{'AB'[p % 2]}"
            for mag in MAGNIFICATIONS:
                for seq in range(1, images_per_magnification + 1):
                    parsed = BreakHisName(SUBTYPE_LABEL[sub], sub, year, slide, mag, seq)
                    rel = canonical_relpath(parsed)
                    if fmt != "png":
                        rel = rel[: -len(".png")] + f".{fmt}"
                    out = root / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    img = render_patch(rng, size, bool(SUBTYPE_LABEL[sub]), si, mag)
                    img.save(out, quality=92) if fmt in ("jpg", "jpeg") else img.save(out)
    (root / GENERATED_MARKER).write_text(
        f"Generated by trainer.data.synthetic (seed {seed}): BreakHis-like file names, not real tissue.\n"
    )
    return root


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root")
    ap.add_argument("--patients-per-subtype", type=int, default=2)
    ap.add_argument("--images-per-magnification", type=int, default=3)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    generate(
        a.root,
        patients_per_subtype=a.patients_per_subtype,
        images_per_magnification=a.images_per_magnification,
        size=a.size,
        seed=a.seed,
    )


if __name__ == "__main__":
    main()

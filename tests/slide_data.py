"""Test slides made here, in seconds, from what the repository holds (no ../shared): a pyramidal, tiled TIFF with
a resolution tag (a real whole-slide format OpenSlide reads as generic-tiff), built from the bundled IDC patches
of one patient at their slide coordinates, so its tissue is real; and the bad inputs the Slide view must refuse."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

IDC_MINI = Path(__file__).resolve().parents[1] / "assets" / "data" / "idc-mini"
IDC_MPP = 4.0  # um per pixel of the IDC patches (trainer.slide.scale's default for idc)
_NAME = re.compile(r"_x(\d+)_y(\d+)_class(\d)\.png$")


def idc_canvas(patient: str = "8863", window: int | None = 1000) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """(RGB canvas on white, [(x, y, label)] of the patches placed): the patient's bundled patches at their slide
    coordinates, cropped to the ``window`` x ``window`` px square holding most of them (None: all of them)."""
    found = []
    for p in sorted((IDC_MINI / patient).glob("*/*.png")):
        m = _NAME.search(p.name)
        if m:
            found.append((int(m[1]), int(m[2]), int(m[3]), p))
    xs, ys = np.array([f[0] for f in found]), np.array([f[1] for f in found])
    if window:
        cx, cy = int(np.median(xs)), int(np.median(ys))
        x0, y0 = max(0, cx - window // 2), max(0, cy - window // 2)
        found = [f for f in found if x0 <= f[0] <= x0 + window - 50 and y0 <= f[1] <= y0 + window - 50]
        w = h = window
    else:
        x0, y0, w, h = xs.min(), ys.min(), xs.max() - xs.min() + 50, ys.max() - ys.min() + 50
    canvas = np.full((h, w, 3), 255, dtype=np.uint8)
    placed = []
    for x, y, label, path in found:
        patch = np.asarray(Image.open(path).convert("RGB"))[:50, :50]
        canvas[y - y0 : y - y0 + patch.shape[0], x - x0 : x - x0 + patch.shape[1]] = patch
        placed.append((x - x0, y - y0, label))
    return canvas, placed


def write_pyramid(path: Path, image: np.ndarray, mpp: float | None = IDC_MPP, tile: int = 256) -> Path:
    """``image`` as a tiled pyramidal TIFF (full size, then halves down to one tile, each a main IFD: OpenSlide's
    generic-tiff layout), JPEG-free, with the resolution in pixels per centimetre when ``mpp`` is given."""
    import tifffile

    levels = [image]
    while max(levels[-1].shape[:2]) > tile:
        h, w = levels[-1].shape[:2]
        levels.append(np.asarray(Image.fromarray(levels[-1]).resize((max(1, w // 2), max(1, h // 2)), Image.BOX)))
    with tifffile.TiffWriter(path) as tif:
        for i, level in enumerate(levels):
            extra = {"subfiletype": 1} if i else {}
            if mpp:
                f = level.shape[1] / image.shape[1]
                extra |= {"resolution": (1e4 / mpp * f, 1e4 / mpp * f), "resolutionunit": "CENTIMETER"}
            tif.write(level, tile=(tile, tile), photometric="rgb", compression="zlib", **extra)
    return path


def idc_slide(path: Path, window: int | None = 1000, mpp: float | None = IDC_MPP) -> Path:
    return write_pyramid(path, idc_canvas(window=window)[0], mpp)


def blank_slide(path: Path, size: int = 600) -> Path:
    """Glass only: a slide with no tissue."""
    return write_pyramid(path, np.full((size, size, 3), 245, dtype=np.uint8))


def truncated(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def huge_png(path: Path, side: int = 50_000) -> Path:
    """A PNG whose header claims ``side`` x ``side`` px (a decompression bomb), a few hundred bytes on disk."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path

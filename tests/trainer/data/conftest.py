"""Hostile-image writers and a tiny dataset for the data-layer tests (all generated, no ../shared)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width x height`` (a decompression bomb's header, without the bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )
    return path


def write_hostile(folder: Path, good: Path, stem: str) -> dict[str, Path]:
    """Write one file per hostile kind into ``folder``, named ``<stem-with-kind>``; returns kind -> path.
    ``stem`` is a format string with ``{seq}`` so names can be BreakHis names."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    data = good.read_bytes()
    out["truncated"] = folder / stem.format(seq="901", ext="png")
    out["truncated"].write_bytes(data[: len(data) // 2])
    out["empty"] = folder / stem.format(seq="902", ext="png")
    out["empty"].write_bytes(b"")
    out["text"] = folder / stem.format(seq="903", ext="png")
    out["text"].write_text("this is not an image\n")
    out["huge"] = png_claiming_size(folder / stem.format(seq="904", ext="png"), 10_000, 5_000)
    out["bomb"] = png_claiming_size(folder / stem.format(seq="905", ext="png"), 100_000, 100_000)
    # Valid but unusual: must be read, converted to RGB and kept.
    rng = np.random.default_rng(0)
    out["16bit"] = folder / stem.format(seq="906", ext="png")
    Image.fromarray((rng.integers(0, 4096, (24, 32))).astype(np.uint16)).save(out["16bit"])
    out["cmyk"] = folder / stem.format(seq="907", ext="jpg")
    Image.new("CMYK", (32, 24), (10, 200, 30, 5)).save(out["cmyk"])
    out["rgba"] = folder / stem.format(seq="908", ext="png")
    Image.new("RGBA", (32, 24), (200, 10, 10, 0)).save(out["rgba"])
    return out


BAD_KINDS = ("truncated", "empty", "text", "huge", "bomb")
ODD_BUT_VALID = ("16bit", "cmyk", "rgba")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """8 subtypes x 1 patient x 4 magnifications x 1 image, 32 px (32 files)."""
    from trainer.data.synthetic import generate

    return generate(
        tmp_path_factory.mktemp("tiny"), patients_per_subtype=1, images_per_magnification=1, size=32, seed=1
    )


@pytest.fixture(scope="module")
def tiny_records(tiny_root):
    from trainer.data.index import index_dataset

    return index_dataset(tiny_root).records

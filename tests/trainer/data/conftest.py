"""Hostile-image writers, a tiny BreakHis-like dataset and tiny IDC-layout folders for the data-layer tests (all
generated, no ../shared)."""

from __future__ import annotations

import csv
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
    from trainer.data.sources import index_dataset

    return index_dataset(tiny_root).records


# --- IDC layout (per-patch labels) ------------------------------------------------------------------------

IDC_EDGE_SIZES = ((50, 1), (50, 12))  # (width, height) of the slide-edge tiles the real dataset has


def idc_name(patient: str, x: int, y: int, label: int) -> str:
    return f"{patient}_idx5_x{x}_y{y}_class{label}.png"


def write_idc(
    root: Path, patients: dict[str, tuple[int, int]], *, edges: bool = True, manifest: bool = False, seed: int = 0
) -> Path:
    """A tiny IDC-layout folder, ``root/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``: for each patient
    ``(benign, malignant)`` 50x50 PNGs of random pixels (so no two files are duplicates), cut on a 50 px grid.
    ``edges``: the first patient also gets a 50x1 and a 50x12 class-0 slide-edge tile (``IDC_EDGE_SIZES``).
    ``manifest``: a ``MANIFEST.csv`` (``path,label,patient_id``) listing every file, as the shared copy has."""
    rng = np.random.default_rng(seed)
    rows = []

    def write(patient: str, x: int, y: int, label: int, size: tuple[int, int]) -> None:
        path = root / patient / str(label) / idc_name(patient, x, y, label)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        rows.append((path.relative_to(root).as_posix(), ("benign", "malignant")[label], patient))

    for k, (patient, (n_benign, n_malignant)) in enumerate(patients.items()):
        labels = [0] * n_benign + [1] * n_malignant
        for i, label in enumerate(labels):
            write(patient, 1 + 50 * (i % 20), 1 + 50 * (i // 20), label, (50, 50))
        if edges and k == 0:
            for j, size in enumerate(IDC_EDGE_SIZES):
                write(patient, 1 + 50 * j, 5001, 0, size)
    if manifest:
        with open(root / "MANIFEST.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "label", "patient_id"])
            w.writerows(rows)
    return root


# Six patients, both classes each, about 10 patches: the IDC fixture most tests share (plus 2 edge tiles).
IDC_PATIENTS = {"8863": (6, 3), "8864": (5, 4), "8865": (7, 2), "8913": (4, 5), "8914": (6, 4), "8916": (3, 6)}


@pytest.fixture(scope="module")
def idc_root(tmp_path_factory):
    return write_idc(tmp_path_factory.mktemp("idc"), IDC_PATIENTS)

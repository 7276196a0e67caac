"""An IDC patient's slide rebuilt from its patches, as a pyramidal TIFF (``python -m trainer slide-mosaic``).

IDC patch names carry where each 50x50 patch was cut (``<patient>_idx5_x<X>_y<Y>_class<C>.png``, ``trainer.data``'s
``parse_idc_name``): placed there, one patient's patches rebuild the reduced slide they were cut from, with a
per-patch ground truth. The mosaic's origin is the patches' smallest x and y, so its tile grid at the IDC scale
(50 px from the top-left corner) is the patch grid: tile i is patch i. Where no patch was kept the mosaic is
white (background). It is written as a real whole-slide format: a tiled, lossless (deflate) pyramidal TIFF, each
level half the one before, with the resolution tags in centimetres (OpenSlide reads them as ``openslide.mpp-x``).
Beside it, ``<name>.patches.csv`` lists each patch's place in the mosaic and its label."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from trainer.slide.reader import SlideError
from trainer.slide.scale import IDC_MPP

TIFF_TILE = 256
MIN_LEVEL_SIDE = 512  # levels are halved until the longer side is under this
MAX_MOSAIC_PIXELS = 200_000_000  # the mosaic is assembled in memory (600 MB as RGB)
PATCH_COLUMNS = ("path", "x", "y", "width", "height", "label", "slide_x", "slide_y")


def tiff_options(mpp: float, tile: int = TIFF_TILE) -> dict:
    """tifffile ``write`` options of one level: tiled, deflate (lossless), RGB, resolution in pixels per cm."""
    pixels_per_cm = 1e4 / mpp
    return {
        "tile": (tile, tile),
        "photometric": "rgb",
        "compression": "zlib",
        "resolutionunit": "CENTIMETER",
        "resolution": (pixels_per_cm, pixels_per_cm),
        "metadata": None,
    }


def write_levels(tif, image: np.ndarray, mpp: float, *, reduced: bool = False, tile: int = TIFF_TILE) -> None:
    """``image`` at ``mpp`` into an open ``tifffile.TiffWriter``, then each level half the one before (a box
    average) down to under ``MIN_LEVEL_SIDE`` px; ``reduced``: ``image`` itself is a reduced level of the slide."""
    level, factor = Image.fromarray(image), 1
    if reduced:
        tif.write(image, subfiletype=1, **tiff_options(mpp, tile))
    else:
        tif.write(image, description=f"histoapp mosaic; mpp={mpp}", **tiff_options(mpp, tile))
    while max(level.size) >= MIN_LEVEL_SIDE:
        level, factor = level.reduce(2), factor * 2
        tif.write(np.asarray(level), subfiletype=1, **tiff_options(mpp * factor, tile))


def write_pyramid(path: str | Path, image: np.ndarray, mpp: float, *, tile: int = TIFF_TILE) -> Path:
    """``image`` (H, W, 3 uint8) as a tiled, deflate-compressed pyramidal TIFF at ``mpp`` um per pixel
    (``write_levels``), written to a temporary name and moved into place."""
    import tifffile

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tifffile.TiffWriter(tmp, bigtiff=image.nbytes > 2**31) as tif:
        write_levels(tif, image, mpp, tile=tile)
    tmp.replace(path)
    return path


def patient_patches(patient_dir: str | Path) -> list[tuple[Path, int, int, int]]:
    """(file, x, y, label) of every IDC patch below ``patient_dir`` (``<patient>/<0|1>/...``)."""
    from trainer.data.sources.idc import parse_idc_name

    root = Path(patient_dir)
    if not root.is_dir():
        raise SlideError(f"{root}: not a folder (give one IDC patient's folder, e.g. ../shared/data/idc/8914)")
    out = []
    for f in sorted(root.rglob("*.png")):
        parsed = parse_idc_name(f.name)
        if parsed is not None:
            out.append((f, parsed[1], parsed[2], parsed[3]))
    if not out:
        raise SlideError(f"{root}: no IDC patches (<patient>_idx5_x<X>_y<Y>_class<C>.png) below it")
    return out


def build_mosaic(patient_dir: str | Path, out: str | Path, *, mpp: float = IDC_MPP) -> tuple[Path, Path]:
    """Write ``out`` (the pyramidal TIFF) and ``<out stem>.patches.csv``; returns both paths."""
    from trainer.data.images import ImageError, load_rgb

    patches = patient_patches(patient_dir)
    x0, y0 = min(p[1] for p in patches), min(p[2] for p in patches)
    images, width, height = [], 0, 0
    for f, x, y, label in patches:
        try:
            im = load_rgb(f)
        except ImageError:
            continue  # an unreadable patch leaves its place white
        images.append((f, x - x0, y - y0, label, np.asarray(im)))
        width, height = max(width, x - x0 + im.width), max(height, y - y0 + im.height)
    if width * height > MAX_MOSAIC_PIXELS:
        raise SlideError(f"{patient_dir}: a {width} x {height} px mosaic is over {MAX_MOSAIC_PIXELS / 1e6:.0f} MP")
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    rows = []
    for f, x, y, label, pixels in images:
        h, w = pixels.shape[:2]
        canvas[y : y + h, x : x + w] = pixels
        rows.append((str(f), x, y, w, h, label, x + x0, y + y0))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_pyramid(out, canvas, mpp)
    table = out.with_name(out.stem + ".patches.csv")
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(PATCH_COLUMNS)
        w.writerows(rows)
    return out, table


def read_patches(table: str | Path) -> list[dict]:
    """The rows of a mosaic's ``.patches.csv`` (ints where numbers)."""
    with open(table, newline="") as fh:
        return [{k: (v if k == "path" else int(v)) for k, v in r.items()} for r in csv.DictReader(fh)]


def compare_with_evaluate(model, checkpoint: str | Path, patient_dir: str | Path, work_dir: str | Path) -> dict:
    """An IDC patient's mosaic scored with ``trainer slide`` against ``trainer evaluate`` on the same patches (tile i
    is patch i), without and with slide context (``trainer context``'s 3x3 mean). ``model``: ``checkpoint`` loaded.
    Returns ``{"patches": n, False: (labels, tile P, evaluate P), True: (the same with context), "all": (labels,
    evaluate P, with context) over every patch evaluate scored}``; the slide path scores tissue tiles only."""
    import shutil

    from trainer.context import neighbour_mean
    from trainer.evaluate import evaluate_checkpoint
    from trainer.runfiles import read_predictions
    from trainer.slide import open_slide, score_slide

    patient_dir, work = Path(patient_dir), Path(work_dir)
    patient = patient_dir.name
    shutil.copytree(patient_dir, work / "idc" / patient)  # the one patient as a dataset (the index follows no links)
    tif, table = build_mosaic(patient_dir, work / f"{patient}.tif")
    evaluate_checkpoint(checkpoint, work / "idc", out_dir=work / "eval", progress=False)
    evaluated = {
        r["path"].rsplit("/", 1)[-1]: float(r["prob_malignant"])
        for r in read_predictions(work / "eval" / "predictions.csv")
    }
    patches = {(r["x"], r["y"]): r for r in read_patches(table)}
    out: dict = {"patches": len(patches)}
    for context in (False, True):
        with open_slide(tif) as slide:
            result = score_slide(model, slide, context=context)
        matched = [(t, patches[(t.x, t.y)]) for t in result.scored if (t.x, t.y) in patches]
        matched = [(t, p) for t, p in matched if p["path"].rsplit("/", 1)[-1] in evaluated]
        ev = np.array([evaluated[p["path"].rsplit("/", 1)[-1]] for _, p in matched])
        if context:
            ev = neighbour_mean([patient] * len(ev), [t.x for t, _ in matched], [t.y for t, _ in matched], ev)
        tiles = np.array([t.prob_malignant for t, _ in matched])
        out[context] = ([p["label"] for _, p in matched], tiles, np.asarray(ev))
    by_name = {p["path"].rsplit("/", 1)[-1]: p for p in patches.values()}
    every = [(by_name[k], v) for k, v in evaluated.items() if k in by_name]
    probs = np.array([v for _, v in every])
    smooth = neighbour_mean([patient] * len(every), [p["x"] for p, _ in every], [p["y"] for p, _ in every], probs)
    out["all"] = ([p["label"] for p, _ in every], probs, np.asarray(smooth))
    return out

"""Slide scoring throughput (issue 26): tiles/s of ``trainer slide`` (``trainer.slide.score_slide``: reading the
slide a row band at a time in a reader thread, the tissue test, batched ``predict_images``) against batched
``trainer.predict.predict_images`` on the same tiles already in memory, in the same run, and the peak resident
memory of the slide path. The goals: a 20,000-tile slide in <= 2 minutes on the 2-core CPU with the demo CNN,
tiles/s within 10 % of the batched baseline (ratio >= 0.90), peak memory <= 2 GiB whatever the slide size.

    nice -n 5 uv run python bench/slide_throughput.py                       # 20,000 tiles, 1 gigapixel level 0
    uv run python bench/slide_throughput.py --tiles 2000 --level0-mpp 4     # quick: one level, 5 MP

The bench slide: real IDC patches (../shared/data/idc; generated H&E-like patches when it is absent) laid edge to
edge in a square grid at the IDC scale (4 um/px), so every tile is tissue and goes through the model. With
``--level0-mpp 1`` (default) that picture is the 4x-reduced level of a pyramidal TIFF whose level 0 is at 1 um/px
(20,000 tiles -> 28,200 x 28,200 px, 0.8 gigapixel; level 0 is the picture enlarged 4x, written tile by tile),
as a slide scanned at 10x; the reader picks the 4 um/px level, as it would on a real pyramid.

The slide is built in a child process; then the slide path runs first (its peak RSS is read right after it:
``ru_maxrss``, model and torch included, before the baseline holds every tile in memory), then the baseline on the
very tiles the slide path read. ``--rounds 2``
repeats the pair the other way round (ABBA) on a busy machine; medians are reported."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from trainer.slide.mosaic import TIFF_TILE, tiff_options, write_levels, write_pyramid  # noqa: E402

IDC = ROOT.parent / "shared" / "data" / "idc"


def _patches(n: int, seed: int = 0) -> list[np.ndarray]:
    """Up to ``n`` distinct 50x50 patches: real IDC ones when present (cycled), else generated."""
    files = sorted(IDC.glob("*/*/*.png")) if IDC.is_dir() else []
    if not files:
        for alt in (ROOT.parent.parent / "shared" / "data" / "idc",):
            files = sorted(alt.glob("*/*/*.png")) if alt.is_dir() else []
    out = []
    if files:
        rng = np.random.default_rng(seed)
        for f in rng.permutation(len(files))[: min(n, 4000)]:
            im = Image.open(files[f]).convert("RGB")
            if im.size == (50, 50):
                out.append(np.asarray(im))
        return out
    from trainer.data.synthetic import render_patch

    rng = np.random.default_rng(seed)
    return [np.asarray(render_patch(rng, 50, bool(k % 3 == 0), 4, "40X")) for k in range(min(n, 500))]


def build_slide(path: Path, tiles: int, level0_mpp: float) -> tuple[Path, int]:
    """A pyramidal TIFF of about ``tiles`` IDC-scale tiles; returns (path, side of the 4 um/px picture)."""
    import tifffile

    per_side = math.ceil(math.sqrt(tiles))
    side = per_side * 50
    patches = _patches(per_side * per_side)
    picture = np.empty((side, side, 3), np.uint8)
    for k in range(per_side * per_side):
        r, c = divmod(k, per_side)
        picture[r * 50 : r * 50 + 50, c * 50 : c * 50 + 50] = patches[k % len(patches)]
    factor = round(4.0 / level0_mpp)
    if factor <= 1:
        write_pyramid(path, picture, 4.0)
        return path, side
    big = side * factor
    tile = TIFF_TILE

    def level0_tiles():
        src = tile // factor
        for ty in range(0, big, tile):
            for tx in range(0, big, tile):
                block = np.full((src, src, 3), 255, np.uint8)
                part = picture[ty // factor : ty // factor + src, tx // factor : tx // factor + src]
                block[: part.shape[0], : part.shape[1]] = part
                yield np.repeat(np.repeat(block, factor, axis=0), factor, axis=1)

    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(level0_tiles(), shape=(big, big, 3), dtype=np.uint8, **tiff_options(level0_mpp, tile))
        write_levels(tif, picture, 4.0, reduced=True, tile=tile)
    return path, side


def run_slide(model, path: Path, batch_size: int):
    from trainer.slide import open_slide, score_slide
    from trainer.slide.tiling import read_tiles

    with open_slide(path) as slide:
        t0 = time.perf_counter()
        result = score_slide(model, slide, batch_size=batch_size)
        seconds = time.perf_counter() - t0
        result.summary["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        specs = [s for s in result.grid.specs()]
        images = read_tiles(slide, result.grid, specs)  # the very tiles, for the baseline (not timed)
    return result, seconds, images


def run_baseline(model, images, batch_size: int) -> float:
    """Batched ``predict_images`` as ``python -m trainer predict`` runs it (numpy's BLAS at one thread: trainer.cli)."""
    from trainer.predict import predict_images
    from trainer.threads import single_threaded_blas

    t0 = time.perf_counter()
    with single_threaded_blas():
        for i in range(0, len(images), batch_size):
            predict_images(model, images[i : i + batch_size], batch_size=batch_size)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "assets" / "models" / "demo-cnn"))
    ap.add_argument("--tiles", type=int, default=20_000)
    ap.add_argument("--level0-mpp", type=float, default=1.0, help="um/px of level 0 (4: the picture itself)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1, help="2: slide, baseline, baseline, slide (ABBA)")
    ap.add_argument("--slide", help="an existing slide to score instead of building one")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--build-only", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()

    import torch

    from trainer.models import load_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="slide-bench-"))
    try:
        t0 = time.perf_counter()
        if args.build_only:
            build_slide(Path(args.build_only), args.tiles, args.level0_mpp)
            return
        if args.slide:
            path = Path(args.slide)
        else:  # built in a child process, so this one's peak RSS is the scoring's, not the building's
            path = tmp / "bench.tif"
            cmd = [sys.executable, __file__, "--build-only", str(path), "--tiles", str(args.tiles)]
            subprocess.run([*cmd, "--level0-mpp", str(args.level0_mpp)], check=True)
            print(
                f"built {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s", flush=True
            )
        model = load_checkpoint(args.model, device="cpu")
        slide_s, base_s, rss = [], [], None
        images, result = None, None
        for r in range(args.rounds):
            order = ("slide", "base") if r % 2 == 0 else ("base", "slide")
            for what in order:
                if what == "slide":
                    result, s, imgs = run_slide(model, path, args.batch_size)
                    slide_s.append(s)
                    if rss is None:
                        rss = result.summary["peak_rss_gib"]  # before the baseline's tiles were read
                    images = images or imgs
                    print(
                        f"slide path: {len(result.tiles)} tiles in {s:.1f} s ({len(result.tiles) / s:.1f} tiles/s)",
                        flush=True,
                    )
                else:
                    if images is None:
                        result, s, images = run_slide(model, path, args.batch_size)
                        slide_s.append(s)
                        rss = result.summary["peak_rss_gib"]
                    b = run_baseline(model, images, args.batch_size)
                    base_s.append(b)
                    print(
                        f"baseline predict_images: {len(images)} tiles in {b:.1f} s ({len(images) / b:.1f} tiles/s)",
                        flush=True,
                    )
        n = len(result.tiles)
        slide_rate, base_rate = n / statistics.median(slide_s), n / statistics.median(base_s)
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), platform.processor()
            )
        out = {
            "cpu": cpu,
            "torch_threads": torch.get_num_threads(),
            "slide": str(path),
            "tiles": n,
            "tissue_tiles": result.summary["tissue_tiles"],
            "level_read": result.grid.level,
            "slide_seconds": round(statistics.median(slide_s), 2),
            "slide_tiles_per_s": round(slide_rate, 1),
            "baseline_tiles_per_s": round(base_rate, 1),
            "ratio": round(slide_rate / base_rate, 3),
            "peak_rss_gib_slide_path": round(rss, 3),
            "projected_20000_tiles_s": round(20_000 / slide_rate, 1),
            "rounds": args.rounds,
        }
        print(json.dumps(out, indent=1))
        print(
            f"ratio slide / batched predict_images = {out['ratio']:.3f} (goal >= 0.90); 20,000 tiles in "
            f"{out['projected_20000_tiles_s']:.0f} s (goal <= 120 s); peak RSS {rss:.2f} GiB (goal <= 2 GiB)"
        )
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
    finally:
        for f in tmp.glob("*"):
            f.unlink()
        tmp.rmdir()
        os.sync()


if __name__ == "__main__":
    main()

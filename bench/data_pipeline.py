"""Data pipeline throughput: images/s through ``PatchDataset`` + ``make_loader`` (decode, resize, the training
augmentation, ImageNet normalisation, batching) uncached, with the memory cache and with the disk cache,
measured in one run; the ratios are against the uncached pipeline.

    OMP_NUM_THREADS=1 nice -n 10 uv run python bench/data_pipeline.py            # ../shared/data/breakhis, else generated
    uv run python bench/data_pipeline.py --data PATH/TO/BreaKHis_v1 --limit 800 --input-size 224

Data: ``--data``, else ``../shared/data/breakhis`` when present, else a generated BreakHis-like set at the real
patch size (700x460 PNG; ``trainer.data.synthetic``). The output says which. Cached figures are for the
epochs after the one that fills the cache (what training sees from epoch 2 on)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from trainer.data.dataset import PatchDataset  # noqa: E402
from trainer.data.loading import make_loader  # noqa: E402
from trainer.data.sources import index_dataset  # noqa: E402
from trainer.data.transforms import build_transforms  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "breakhis"


def find_data(arg: str | None, tmp: Path, n_generate: int) -> tuple[Path, str]:
    if arg:
        return Path(arg), f"given: {arg}"
    if SHARED.is_dir() and any(SHARED.iterdir()):
        return SHARED, f"real BreakHis ({SHARED})"
    from trainer.data.synthetic import generate

    per_mag = max(1, n_generate // 32)  # 8 subtypes x 1 patient x 4 magnifications
    root = generate(
        tmp / "generated", patients_per_subtype=1, images_per_magnification=per_mag, size=(700, 460), seed=0
    )
    return root, f"generated BreakHis-like data ({8 * 4 * per_mag} PNGs of 700x460 px; no real BreakHis here)"


def epoch_rate(loader) -> float:
    n, t0 = 0, time.perf_counter()
    for x, _, _ in loader:
        n += x.shape[0]
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="dataset folder (default: ../shared/data/breakhis, else generated)")
    ap.add_argument("--limit", type=int, default=320, help="images used (a seeded sample; default 320)")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0: the main process)")
    ap.add_argument("--epochs", type=int, default=3, help="measured epochs per pipeline (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine)")
    ap.add_argument("--json", dest="json_out", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        root, described = find_data(args.data, tmp, args.limit)
        records = index_dataset(root, verify="none").records
        random.Random(0).shuffle(records)
        records = records[: args.limit]
        transform = build_transforms(args.input_size, train=True)

        def loader(ds):
            return make_loader(ds, args.batch_size, shuffle=True, num_workers=args.workers, seed=0)

        pipelines = {
            "uncached": PatchDataset(records, transform),
            "memory cache": PatchDataset(records, transform, cache_size=args.input_size),
            "disk cache": PatchDataset(
                records, transform, cache_size=args.input_size, cache_dir=tmp / "cache", memory_cache=False
            ),
        }
        rates: dict[str, list[float]] = {k: [] for k in pipelines}
        fill: dict[str, float] = {}
        for name, ds in pipelines.items():
            if name != "uncached":
                fill[name] = epoch_rate(loader(ds))  # the first epoch decodes and fills the cache
        # Interleave the measured epochs so a busy machine slows every pipeline alike.
        for _ in range(args.epochs):
            for name, ds in pipelines.items():
                rates[name].append(epoch_rate(loader(ds)))
        med = {k: statistics.median(v) for k, v in rates.items()}
        base = med["uncached"]
        out = {
            "data": described,
            "images": len(records),
            "input_size": args.input_size,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "torch_threads": args.threads,
            "epochs_measured": args.epochs,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs visible, {platform.python_version()}, torch {torch.__version__}",
            "images_per_s": {k: round(v, 1) for k, v in med.items()},
            "first_epoch_images_per_s": {k: round(v, 1) for k, v in fill.items()},
            "ratio_vs_uncached": {k: round(v / base, 2) for k, v in med.items()},
        }
        print(
            f"data: {described}; {len(records)} images -> {args.input_size} px, batch {args.batch_size}, "
            f"{args.workers} workers, {args.threads} torch thread(s)"
        )
        print(f"{'pipeline':<14}{'images/s':>10}{'ratio':>8}{'first epoch':>13}")
        for k in pipelines:
            first = f"{fill[k]:.1f}" if k in fill else "-"
            print(f"{k:<14}{med[k]:>10.1f}{med[k] / base:>7.2f}x{first:>13}")
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(out, indent=1))
        print(json.dumps(out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What knowing when not to answer costs (issue 13), on the CPU, per model, the ratios measured in one run:

- one patch: a plain prediction (``predict_proba``) against the trusted one from the same forward pass
  (``logits_and_features`` + Mahalanobis OOD score + temperature: goal <= 1.1x), and with the image checks
  and the abstention rule too (``trainer.predict.predict_images``, what the app and ``trainer predict`` run);
- test-time augmentation (8 flips / rotations in one batch) against the plain prediction;
- images/s batched (``--batch-size``) against one image at a time (issue 16: batched inference over folders).

    OMP_NUM_THREADS=2 nice -n 10 uv run python bench/trust_cost.py
    uv run python bench/trust_cost.py --checkpoint assets/models/demo-cnn --runs 50 --json out.json
    OMP_NUM_THREADS=1 nice -n 10 uv run python bench/trust_cost.py --clock cpu   # on a busy machine

Patches are real IDC patches from ``../shared/data/idc`` when that folder is there, else generated ones. A
checkpoint without a trust reference gets one fitted on the bench patches, for timing only (said in the output).
Plain and trusted runs alternate per patch, so a busy machine slows both alike."""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IDC = ROOT.parent / "shared" / "data" / "idc"


def patches(n: int):
    from trainer.data.images import MIN_SIDE, load_rgb

    if (IDC / "MANIFEST.csv").is_file():
        with open(IDC / "MANIFEST.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        step = max(1, len(rows) // (4 * n))
        out = []
        for r in rows[::step]:
            im = load_rgb(IDC / r["path"])
            if min(im.size) >= MIN_SIDE:
                out.append(im)
            if len(out) == n:
                break
        return out, f"real IDC patches ({IDC})"
    import numpy as np

    from trainer.data.synthetic import render_patch

    rng = np.random.default_rng(0)
    return [render_patch(rng, 50, bool(i % 2), 4 * (i % 2), "40X") for i in range(n)], "generated patches"


def _median_ms(xs) -> float:
    return statistics.median(xs) * 1000.0


CLOCK = time.perf_counter  # --clock cpu: time.process_time (this process's CPU time: a busy machine's waits left out)


def interleaved(fns: dict, images, runs: int, warmup: int = 3) -> dict[str, float]:
    """Median ms per call of each ``fn(image)``, called in turn on the same patch."""
    for im in images[:warmup]:
        for fn in fns.values():
            fn(im)
    times = {k: [] for k in fns}
    for i in range(runs):
        im = images[i % len(images)]
        for k, fn in fns.items():
            t0 = CLOCK()
            fn(im)
            times[k].append(CLOCK() - t0)
    return {k: _median_ms(v) for k, v in times.items()}


def ensure_reference(ckpt, images) -> str:
    """The checkpoint's trust reference, or one fitted on ``images`` for timing (same sizes as a real one)."""
    if ckpt.trust is not None and ckpt.trust.ood is not None:
        return "the checkpoint's own"
    import numpy as np

    from trainer.predict import forward
    from trainer.trust.calibration import Calibration
    from trainer.trust.ood import MahalanobisOOD
    from trainer.trust.reference import TrustReference

    logits, features = forward(ckpt, images)
    labels = np.argmax(logits, 1)
    if len(set(labels.tolist())) < 2:
        labels = np.arange(len(labels)) % 2
    ood = MahalanobisOOD.fit(features, labels)
    ood.set_threshold(ood.score(features), 0.99)
    ckpt.trust = TrustReference(ood=ood, calibration=Calibration(temperature=1.3))
    return "none in the checkpoint: one fitted on the bench patches, for timing only"


def bench_model(path: str, images, runs: int, batch_size: int) -> dict:
    import torch

    from trainer.engine import to_device
    from trainer.models import load_checkpoint
    from trainer.predict import forward, predict_images
    from trainer.trust.assess import assess

    ckpt = load_checkpoint(path, device="cpu")
    reference = ensure_reference(ckpt, images)
    adapter, tf = ckpt.adapter, ckpt.adapter.transform(False, ckpt.input_size)
    adapter.module.eval()

    def plain(im):
        with torch.no_grad():
            batch = to_device(adapter.collate([tf(im)], [0]), "cpu")
            return adapter.predict_proba(batch)

    def ood_calibrated(im):  # the same forward pass + OOD score + temperature
        logits, features = forward(ckpt, [im])
        return assess(logits, features, ckpt.classes, ckpt.trust)

    def trusted(im):  # + the image checks and the abstention rule: what the app and `trainer predict` run
        return predict_images(ckpt, [im])

    def tta(im):
        return predict_images(ckpt, [im], tta=True)

    with torch.no_grad():
        single = interleaved(
            {"plain": plain, "ood_calibrated": ood_calibrated, "trusted": trusted, "tta": tta}, images, runs
        )
    # Throughput over a folder's worth of patches: batched vs one at a time (both with every trust check).
    n = len(images)
    t0 = time.perf_counter()
    predict_images(ckpt, images, batch_size=batch_size)
    batched = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for im in images:
        predict_images(ckpt, [im])
    one_by_one = n / (time.perf_counter() - t0)
    return {
        "checkpoint": path,
        "family": adapter.family,
        "input_size": ckpt.input_size,
        "reference": reference,
        "ms": {k: round(v, 3) for k, v in single.items()},
        "ratio_ood_calibrated": round(single["ood_calibrated"] / single["plain"], 3),
        "ratio_trusted": round(single["trusted"] / single["plain"], 3),
        "ratio_tta": round(single["tta"] / single["plain"], 3),
        "images_per_s_batched": round(batched, 1),
        "images_per_s_one_at_a_time": round(one_by_one, 1),
        "batch_size": batch_size,
        "images": n,
    }


def header(clock: str, what: str) -> dict:
    """The run's conditions: machine, torch threads, load average, clock, patches (this bench and explain_cost)."""
    import torch

    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "clock": clock,
        "patches": what,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint",
        action="append",
        help="checkpoint folder(s) (default: assets/models/demo-cnn and demo-vlm)",
    )
    p.add_argument("--runs", type=int, default=40, help="single-patch calls per variant")
    p.add_argument("--images", type=int, default=64, help="patches for the throughput figure")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", help="also write the figures here")
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: time each call by this process's CPU time, for a shared machine (with OMP_NUM_THREADS=1, "
        "where idle threads do not spin)",
    )
    args = p.parse_args(argv)

    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    paths = args.checkpoint or [str(ROOT / "assets/models/demo-cnn"), str(ROOT / "assets/models/demo-vlm")]
    images, what = patches(args.images)
    out = {
        **header(args.clock, what),
        "models": [bench_model(path, images, args.runs, args.batch_size) for path in paths],
    }
    print(f"{what}; {out['machine']}; load average {out['load_average']:.1f}; {args.clock} clock")
    head = f"{'model':<28} {'plain':>8} {'+OOD+T':>8} {'ratio':>6} {'+checks':>8} {'ratio':>6} {'TTA x8':>8} {'ratio':>6} {'img/s batch':>11} {'img/s 1-by-1':>12}"
    print(head)
    for m in out["models"]:
        ms = m["ms"]
        print(
            f"{Path(m['checkpoint']).name:<28} {ms['plain']:>6.1f}ms {ms['ood_calibrated']:>6.1f}ms "
            f"{m['ratio_ood_calibrated']:>5.2f}x {ms['trusted']:>6.1f}ms {m['ratio_trusted']:>5.2f}x "
            f"{ms['tta']:>6.1f}ms {m['ratio_tta']:>5.2f}x {m['images_per_s_batched']:>11.1f} "
            f"{m['images_per_s_one_at_a_time']:>12.1f}"
        )
        print(f"  reference: {m['reference']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Step time and peak memory of the VLM training modes on CPU: full fine-tuning (the baseline) vs LoRA vs
linear probe (and zero-shot scoring), on small SmolVLM/Idefics3 and Qwen2-VL models built locally.

    OMP_NUM_THREADS=1 python bench/vlm_modes.py [--family idefics3 qwen2_vl] [--steps 6] [--batch 8]

Each (family, mode) runs in its own process so one mode's memory does not hide another's. Memory is the
peak resident set size during the training steps above the process's size before the first one (Linux:
``VmHWM`` after resetting it through ``/proc/self/clear_refs``): model weights already loaded are not
counted; gradients, optimiser state (allocated in the untimed warm-up step) and activations are. tracemalloc
would miss torch's allocations."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ["full", "lora", "linear_probe", "zero_shot"]
# About 7 M parameters: big enough that gradients and optimiser state stand out from allocator noise.
SIZE = dict(
    image_size=64, patch_size=8, hidden_size=256, num_layers=6, num_heads=4, vision_hidden_size=192, vision_layers=4
)


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def one(family: str, mode: str, model_dir: str, steps: int, batch_size: int) -> dict:
    """Run in a child process: build the adapter, warm up, then time ``steps`` optimiser steps."""
    import gc

    import numpy as np
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from trainer.config import ModelConfig, TrainConfig
    from trainer.engine import build_optimizer
    from trainer.models import build_adapter

    torch.manual_seed(0)
    adapter = build_adapter(ModelConfig(family="vlm", name=model_dir, mode=mode, freeze_vision=True), 2)
    trainable, total = adapter.parameter_counts()
    rng = np.random.default_rng(0)
    tf = adapter.transform(True, SIZE["image_size"])
    images = [tf(Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))) for _ in range(batch_size)]
    batch = adapter.collate(images, [i % 2 for i in range(batch_size)])
    params = [p for p in adapter.module.parameters() if p.requires_grad]
    opt = build_optimizer(TrainConfig(optimizer="adamw", lr=1e-4), params) if params else None

    def step():
        if opt is None:  # zero-shot: scoring only
            with torch.no_grad():
                adapter.predict_proba(batch)
            return
        adapter.module.train()
        loss = adapter.loss(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    gc.collect()
    base_kb = _status_kb("VmRSS")  # model loaded, batch made: what the modes share
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    step()  # warm-up: optimiser state allocated (counted in the peak), kernels chosen (not timed)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    dt = float(np.median(times))  # the median: the machine is shared, a stolen slice should not count
    peak_kb = _status_kb("VmHWM")
    return {
        "family": family,
        "mode": mode,
        "trainable": trainable,
        "total": total,
        "step_s": dt,
        "peak_extra_mb": (peak_kb - base_kb) / 1024,
        "rss_mb": peak_kb / 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", nargs="+", default=["idefics3", "qwen2_vl"])
    ap.add_argument("--modes", nargs="+", default=MODES)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--_one", nargs=3, metavar=("FAMILY", "MODE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._one:
        print(json.dumps(one(*args._one, args.steps, args.batch)))
        return 0
    if not Path("/proc/self/clear_refs").exists():
        print("this benchmark reads peak memory from Linux /proc; not available here", file=sys.stderr)
        return 1
    sys.path.insert(0, str(ROOT))
    from trainer.models.vlm.tiny import build_tiny_vlm

    print(
        f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, batch {args.batch}, {args.steps} timed steps, "
        f"model {SIZE}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.family:
            folder = build_tiny_vlm(family, Path(tmp) / family, **SIZE)
            for mode in args.modes:
                cmd = [
                    sys.executable,
                    __file__,
                    "--_one",
                    family,
                    mode,
                    str(folder),
                    "--steps",
                    str(args.steps),
                    "--batch",
                    str(args.batch),
                ]
                out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                if out.returncode:
                    print(out.stderr[-2000:], file=sys.stderr)
                    return out.returncode
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"  {family} {mode}: {rows[-1]['step_s'] * 1000:.0f} ms/step", flush=True)
    print(
        "\n| family | mode | trainable / total params | median step (ms) | step vs full | peak extra memory (MiB) | memory vs full |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        full = next(x for x in rows if x["family"] == r["family"] and x["mode"] == "full")
        mem_ratio = f"{r['peak_extra_mb'] / full['peak_extra_mb']:.2f}x" if full["peak_extra_mb"] > 0 else "n/a"
        print(
            f"| {r['family']} | {r['mode']} | {r['trainable']:,} / {r['total']:,} ({100 * r['trainable'] / r['total']:.1f}%) | "
            f"{r['step_s'] * 1000:.0f} | {r['step_s'] / full['step_s']:.2f}x | {r['peak_extra_mb']:.1f} | {mem_ratio} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Trainer overhead: training images/s of the engine's ``fit`` loop (accelerate, events, stop checks,
scheduler, gradient-accumulation bookkeeping) against a bare PyTorch loop on the same model, batch and data,
measured in one run. The goal is a ratio >= 0.95.

    OMP_NUM_THREADS=1 nice -n 10 uv run python bench/trainer_throughput.py
    uv run python bench/trainer_throughput.py --model resnet34 --input-size 224 --batch-size 64 --steps 50   # on a GPU

Both loops read the same in-memory dataset (decoded once, training augmentation on the fly) through the same
kind of DataLoader, start from the same weights and use AdamW with the same settings. Each repeat runs one
epoch of ``--steps`` batches of each loop back to back (alternating which goes first) so a busy machine slows
both alike; the medians of each and the median of the per-repeat ratios are reported. The trainer's figure is its own step timer (``FitResult.images_per_s``: the time
inside the training steps, as for the bare loop; validation and checkpoint writing come after it).
On a GPU both run there (CUDA, the engine's default mixed precision for the trainer, none for the bare loop
unless ``--bare-amp``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from trainer.config import ModelConfig, TrainConfig  # noqa: E402
from trainer.data.dataset import PatchDataset  # noqa: E402
from trainer.data.sources import index_dataset  # noqa: E402
from trainer.engine import fit, make_accelerator, make_loader, resolve_mixed_precision  # noqa: E402
from trainer.models import build_adapter  # noqa: E402


def bare_loop(model, loader, device, lr: float, wd: float, amp: str) -> float:
    """The textbook loop: forward, cross-entropy, backward, AdamW step. Returns images/s."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    n, t0 = 0, time.perf_counter()
    for batch, y, _ in loader:
        x, y = batch["pixel_values"].to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        n += y.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18", help="torchvision architecture (default resnet18)")
    ap.add_argument("--input-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=12, help="batches per measured epoch")
    ap.add_argument("--repeats", type=int, default=5, help="measured epochs per loop (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a shared machine)")
    ap.add_argument("--cpu", action="store_true", help="stay on the CPU even with a GPU")
    ap.add_argument(
        "--bare-amp", action="store_true", help="the bare loop uses the trainer's mixed precision too (GPU)"
    )
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    gpu = torch.cuda.is_available() and not args.cpu
    device = torch.device("cuda" if gpu else "cpu")

    tmp = Path(tempfile.mkdtemp(prefix="bench_trainer_"))
    try:
        from trainer.data.synthetic import generate

        n_images = args.steps * args.batch_size
        per_mag = -(-n_images // 16)  # 8 subtypes x 2 patients, one magnification used
        root = generate(
            tmp / "data",
            patients_per_subtype=2,
            images_per_magnification=per_mag,
            size=max(96, args.input_size),
            seed=0,
        )
        records = [r for r in index_dataset(root, verify="none").records if r.magnification == "40X"][:n_images]

        cfg = ModelConfig(name=args.model, pretrained=False)
        train = TrainConfig(
            epochs=1,
            batch_size=args.batch_size,
            lr=1e-3,
            weight_decay=1e-4,
            scheduler="cosine",
            early_stopping_patience=0,
            log_every=5,
            mixed_precision="auto" if gpu else "no",
        )
        torch.manual_seed(0)
        template = build_adapter(cfg, 2)
        start = {k: v.clone() for k, v in template.module.state_dict().items()}
        ds = PatchDataset(records, template.transform(True, args.input_size), cache_size=args.input_size)
        ds.warm(workers=args.threads)
        amp = resolve_mixed_precision(train.mixed_precision) if gpu else "no"

        def run_bare() -> float:
            template.module.load_state_dict(start)
            model = template.module.to(device)
            loader = make_loader(ds, template, args.batch_size, train=True, seed=0)
            return bare_loop(model, loader, device, train.lr, train.weight_decay, amp if args.bare_amp else "no")

        def run_trainer(i: int) -> float:
            adapter = build_adapter(cfg, 2)
            adapter.module.load_state_dict(start)
            accelerator = make_accelerator(train, cpu=not gpu)
            res = fit(
                adapter, ds, None, train, accelerator=accelerator, out_dir=tmp / f"fit{i}", seed=0, progress=False
            )
            accelerator.free_memory()
            shutil.rmtree(tmp / f"fit{i}", ignore_errors=True)
            return res.images_per_s

        run_bare(), run_trainer(-1)  # warm-up: allocator, kernels, first-use imports
        bare, trainer = [], []
        for i in range(args.repeats):
            if i % 2:  # alternate which goes first, so neither always follows the other
                trainer.append(run_trainer(i))
                bare.append(run_bare())
            else:
                bare.append(run_bare())
                trainer.append(run_trainer(i))
        b, t = statistics.median(bare), statistics.median(trainer)
        pair = statistics.median(
            tv / bv for tv, bv in zip(trainer, bare, strict=True)
        )  # each repeat's ratio: less noise from load swings
        machine = (
            torch.cuda.get_device_name(0)
            if gpu
            else f"CPU {platform.machine()}, {os.cpu_count()} CPUs visible, {args.threads} torch thread(s)"
        )
        out = {
            "model": args.model,
            "input_size": args.input_size,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "repeats": args.repeats,
            "device": machine,
            "mixed_precision": amp,
            "torch": torch.__version__,
            "bare_images_per_s": round(b, 2),
            "trainer_images_per_s": round(t, 2),
            "ratio": round(t / b, 3),
            "median_paired_ratio": round(pair, 3),
            "bare_all": [round(v, 2) for v in bare],
            "trainer_all": [round(v, 2) for v in trainer],
        }
        print(
            f"{args.model}, {args.input_size} px, batch {args.batch_size}, {args.steps} steps x {args.repeats} repeats on {machine}"
        )
        print(
            f"bare PyTorch loop: {b:.1f} images/s   trainer (fit): {t:.1f} images/s   ratio {t / b:.3f} "
            f"(median of per-repeat ratios {pair:.3f}; goal >= 0.95)"
        )
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(out, indent=1))
        print(json.dumps(out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m trainer export CHECKPOINT OUT [--dtype float16]``: a self-contained copy of a VLM checkpoint
(LoRA merged into the base weights, optionally in half precision) that ``trainer.models.load_checkpoint``
and the app load without the base model."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="merge a VLM checkpoint's LoRA adapters into a standalone model folder")
    p.add_argument("checkpoint", help="a checkpoint folder (.../fold<k>/best)")
    p.add_argument("out", help="the folder to write")
    p.add_argument(
        "--dtype",
        choices=["float32", "float16", "bfloat16"],
        default=None,
        help="cast the weights (float16: half the size)",
    )
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    import shutil

    from trainer.models import load_checkpoint
    from trainer.rundir import ENGINE_META

    ckpt = load_checkpoint(args.checkpoint, device="cpu")
    adapter = ckpt.adapter
    if not hasattr(adapter, "export"):
        raise ValueError(
            f"{args.checkpoint}: only VLM checkpoints can be exported (a {adapter.family} checkpoint is already standalone)"
        )
    out = adapter.export(args.out, dtype=args.dtype)
    if (ckpt.path / ENGINE_META).is_file():
        shutil.copy2(ckpt.path / ENGINE_META, out / ENGINE_META)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"exported to {out} ({size / 2**20:.1f} MiB)")
    return 0

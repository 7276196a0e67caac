"""``python -m trainer evaluate CHECKPOINT DATA``: a trained model on another dataset (cross-dataset test)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset (e.g. BreakHis-trained model on BACH)")
    p.add_argument("checkpoint", help="checkpoint folder: runs/<name>/<model>/<mag>/fold<k>/best (or its fold folder)")
    p.add_argument("data", help="dataset folder (BreakHis, BACH, IDC, class folders, or a folder with a MANIFEST.csv)")
    p.add_argument("--source", default="auto", help="dataset kind for the index (default: auto)")
    p.add_argument("--magnification", help="only this magnification (BreakHis)")
    p.add_argument("--out", help="output folder (default: beside the checkpoint, eval-<dataset>)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-size", type=int, help="default: the size the model was trained at")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from trainer.evaluate import evaluate_checkpoint
    from trainer.metrics import METRIC_NAMES, METRICS

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    res = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        source=args.source,
        magnification=args.magnification,
        out_dir=args.out,
        batch_size=args.batch_size,
        input_size=args.input_size,
    )
    m = res["metrics"]
    print(
        f"{res['n']} images ({res['problems']} skipped as problems), input {res['input_size']} px; "
        f"{res['patients']} patients, source {res['source']}"
    )
    for k in METRICS:
        v = m.get(k)
        print(f"  {METRIC_NAMES[k]:<15} {'—' if v is None else f'{v:.4f}'}")
    if res["label_level"] == "patch":
        print("  (labels per patch: patient acc. = mean over patients of each one's share of images right)")
    print(f"predictions and metrics: {res['out_dir']}")
    return 0

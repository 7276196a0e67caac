"""``python -m trainer evaluate CHECKPOINT DATA``: a trained model on another dataset (cross-dataset test)."""

from __future__ import annotations

import argparse

from trainer.data.stain import METHODS as STAIN_METHODS
from trainer.threads import set_torch_threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset (e.g. BreakHis-trained model on BACH)")
    p.add_argument("checkpoint", help="checkpoint folder: runs/<name>/<model>/<mag>/fold<k>/best (or its fold folder)")
    p.add_argument(
        "data",
        nargs="+",
        help="dataset folder (BreakHis, BACH, IDC, class folders, or a folder with a MANIFEST.csv); several: one dataset",
    )
    p.add_argument("--source", default="auto", help="dataset kind for the index (default: auto)")
    p.add_argument("--magnification", help="only this magnification (BreakHis)")
    p.add_argument("--out", help="output folder (default: beside the checkpoint, eval-<dataset>)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-size", type=int, help="default: the size the model was trained at")
    p.add_argument("--patients", help="only these patients, comma-separated (e.g. a fold's test patients)")
    p.add_argument(
        "--stain-normalization",
        choices=[*STAIN_METHODS, "none"],
        help="normalise every image's stains to the bundled reference first, or none (default: as trained)",
    )
    p.add_argument("--threads", type=int)
    p.set_defaults(func=cmd_evaluate)


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def cmd_evaluate(args) -> int:
    from trainer.evaluate import evaluate_checkpoint
    from trainer.metrics import METRIC_NAMES, METRICS

    set_torch_threads(args.threads)
    res = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        source=args.source,
        magnification=args.magnification,
        out_dir=args.out,
        batch_size=args.batch_size,
        input_size=args.input_size,
        patients=[p.strip() for p in args.patients.split(",") if p.strip()] if args.patients else None,
        stain_normalization=args.stain_normalization,
    )
    trust = res["trust"]
    print(
        f"{res['n']} images ({res['problems']} skipped as problems), input {res['input_size']} px, stain "
        f"normalisation {res['stain_normalization'] or 'none'}; "
        f"{res['patients']} patients, source {res['source']}"
    )
    print(f"trust: {trust['reference']}")
    ood = trust["ood_share"]
    kept_in, answered = res["metrics_in_distribution"], res["metrics_answered"]
    print(
        f"flagged OOD: {'— (no OOD reference)' if ood is None else f'{ood:.1%}'}; abstained: {trust['abstain_share']:.1%}"
        + (
            " (" + ", ".join(f"{k} {v:.1%}" for k, v in trust["abstain_by_reason"].items()) + ")"
            if trust["abstain_by_reason"]
            else ""
        )
    )
    print(f"  {'':<15} {'all':>8} {'not OOD':>8} {'answered':>8}")
    print(f"  {'images':<15} {res['n']:>8} {trust['n_in_distribution']:>8} {trust['n_answered']:>8}")
    for k in METRICS:
        cells = [res["metrics"].get(k), kept_in.get(k), answered.get(k)]
        print(f"  {METRIC_NAMES[k]:<15} " + " ".join(f"{'—' if _nan(v) else f'{v:.4f}':>8}" for v in cells))
    before = res["metrics"].get("ece_uncalibrated")
    print(f"  {'ECE before cal.':<15} {'—' if _nan(before) else f'{before:.4f}':>8}")
    ctx = res.get("metrics_context")
    if ctx:
        side = 2 * ctx["radius"] + 1
        print(
            f"  with slide context (each patch with its {side}x{side} neighbours' mean, `trainer context`): "
            + ", ".join(
                f"{METRIC_NAMES[k]} {ctx[k]:.4f}" for k in ("roc_auc", "balanced_accuracy", "f1") if not _nan(ctx[k])
            )
        )
    if res["label_level"] == "patch":
        print("  (labels per patch: patient acc. = mean over patients of each one's share of images right)")
    print(f"predictions and metrics: {res['out_dir']}")
    return 0

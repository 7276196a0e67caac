"""``python -m trainer compare RUN_A RUN_B``: McNemar, DeLong and Wilcoxon between two runs (or two models of one run)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="significance tests between two runs: McNemar, DeLong (AUC), Wilcoxon over folds"
    )
    p.add_argument("run_a")
    p.add_argument("run_b", help="another run folder, or the same one with --model-a/--model-b")
    p.add_argument("--model-a", help="model label in run A (needed when it holds several)")
    p.add_argument("--model-b")
    p.add_argument("--magnification", action="append", help="only these magnifications (repeatable)")
    p.add_argument("--metric", action="append", help="per-fold metrics for Wilcoxon (default: accuracy, f1, roc_auc)")
    p.add_argument("--json", dest="json_out", help="also write the result as JSON")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    from trainer.rundir import write_json_atomic
    from trainer.stats import compare_runs, comparison_markdown

    res = compare_runs(
        args.run_a,
        args.run_b,
        model_a=args.model_a,
        model_b=args.model_b,
        magnifications=args.magnification,
        metrics=tuple(args.metric) if args.metric else ("accuracy", "f1", "roc_auc"),
    )
    print(comparison_markdown(res))
    if args.json_out:
        write_json_atomic(args.json_out, res)
        print(f"written to {args.json_out}")
    return 0

"""``python -m trainer context FOLDER``: each test fold's metrics for the patch alone and with its slide
neighbours (``trainer.context``), from the predictions a run or ``trainer evaluate`` already wrote."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from trainer.context import RADIUS

    p = sub.add_parser(
        "context", help="per-patch data cut from slides (IDC): metrics of each patch alone and with its neighbours"
    )
    p.add_argument("folder", help="a run folder (every finished fold) or a trainer evaluate output folder")
    p.add_argument("--radius", type=int, default=RADIUS, help=f"neighbourhood in tiles (default {RADIUS}: 3x3)")
    p.add_argument("--json", dest="json_out", help="also write the result as JSON")
    p.set_defaults(func=cmd_context)


def cmd_context(args) -> int:
    from trainer.context import context_markdown, context_report
    from trainer.rundir import write_json_atomic

    if args.radius < 1:
        raise ValueError("--radius must be at least 1 (tiles around each patch)")
    res = context_report(args.folder, args.radius)
    print(context_markdown(res))
    if args.json_out:
        write_json_atomic(args.json_out, res)
        print(f"written to {args.json_out}")
    return 0

"""``python -m trainer export SOURCE OUT``: a standalone model folder, the one export command.

- SOURCE a checkpoint folder (``.../fold<k>/best``): a copy that loads on its own (a VLM's LoRA merged into the
  base weights), optionally cast with ``--dtype``;
- SOURCE a run folder: its best fold (``--model``, ``--magnification``, ``--fold``) packaged as an app model
  (``assets/models/<name>/``), fp16 by default, with a ``card.md`` of the run's measured results."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="a standalone model folder from a checkpoint, or a run's best fold as an app model"
    )
    p.add_argument("source", help="a checkpoint folder (.../fold<k>/best) or a run folder (runs/<name>)")
    p.add_argument("out", help="the folder to write")
    p.add_argument(
        "--dtype",
        choices=["float32", "float16", "bfloat16"],
        default=None,
        help="cast the weights (float16: half the size; a run folder's default)",
    )
    run = p.add_argument_group("from a run folder")
    run.add_argument("--model", help="model folder name in the run (e.g. resnet34); needed when it holds several")
    run.add_argument("--magnification", default="all")
    run.add_argument("--fold", type=int, help="default: the fold with the highest test ROC-AUC")
    run.add_argument("--title", default="Demo model", help="the card's title")
    run.add_argument("--command", action="append", default=[], help="command line(s) that made the run, for the card")
    run.add_argument("--notes", default="", help="a paragraph for the card")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from trainer.export import export_checkpoint, export_run
    from trainer.rundir import RunDir

    run = RunDir(args.source)
    if run.config_file.is_file():
        model = args.model or _only_model(run)
        out = export_run(
            run.path,
            model,
            args.magnification,
            args.out,
            title=args.title,
            fold=args.fold,
            commands=args.command,
            notes=args.notes,
            dtype=args.dtype or "float16",
        )
    else:
        out = export_checkpoint(args.source, args.out, dtype=args.dtype)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"exported to {out} ({size / 2**20:.1f} MiB)")
    return 0


def _only_model(run) -> str:
    models = run.models()
    if len(models) != 1:
        raise ValueError(
            f"{run.path} holds {len(models)} models ({', '.join(models) or 'none'}); name one with --model"
        )
    return models[0]

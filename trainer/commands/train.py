"""``python -m trainer train --config C.yaml [--model M] [--magnification 40X] [--fold 0]``: one model on one
magnification and fold, into the same run folder layout as ``cv`` (so ``cv`` later skips it)."""

from __future__ import annotations

import argparse

from trainer.commands.cv import add_experiment_args, config_from_args, run_and_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one model on one magnification and fold (a single cell of the cv grid)")
    add_experiment_args(p)
    p.add_argument("--fold", type=int, default=0, help="which patient-level fold (default 0)")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    cfg = config_from_args(args)
    overrides = [f"data.folds_to_run=[{args.fold}]", f"data.magnifications=[{cfg.data.magnifications[0]}]"]
    data = cfg.with_overrides(overrides).to_dict()
    data["models"] = data["models"][:1]
    from trainer.config import ExperimentConfig

    return run_and_report(ExperimentConfig.from_dict(data), args)

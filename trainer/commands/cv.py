"""``python -m trainer cv --config C.yaml [--set key=value ...] [flags]``: the models x magnifications x folds grid."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trainer.config import ExperimentConfig
from trainer.threads import set_torch_threads


def add_experiment_args(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``cv`` and ``train``. Precedence: config file < these flags < ``--set``."""
    p.add_argument("--config", help="experiment YAML (e.g. trainer/configs/quick_demo.yaml); defaults if omitted")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set train.epochs=2 --set model.pretrained=false (repeatable)",
    )
    p.add_argument("--name", help="experiment name (run folder <output_dir>/<name>)")
    p.add_argument("--output-dir", help="parent folder of run folders (default: runs)")
    p.add_argument(
        "--data-root",
        action="append",
        metavar="DIR",
        help="dataset folder (data.root); repeat it to train on several folders as one dataset (e.g. idc + idc-more)",
    )
    p.add_argument("--source", help="data.source: breakhis | bach | folder | csv | idc | synthetic | auto")
    p.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="model(s) to run instead of the config's (torchvision name or hub id); other model settings are kept",
    )
    p.add_argument("--magnification", action="append", metavar="MAG", help="40X, 100X, 200X, 400X or all (repeatable)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--max-steps", type=int, help="cap optimiser steps per fold (smoke runs)")
    p.add_argument("--input-size", type=int)
    p.add_argument("--pretrained", dest="pretrained", action="store_true", default=None, help="ImageNet weights (CNNs)")
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false", help="train from scratch (offline)")
    p.add_argument("--threads", type=int, help="torch CPU threads (share a small machine politely)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs stay readable)")


def config_from_args(args) -> ExperimentConfig:
    cfg = ExperimentConfig.from_yaml(args.config) if args.config else ExperimentConfig()
    flags: list[str] = []
    simple = {
        "name": args.name,
        "output_dir": args.output_dir,
        # JSON is YAML: a path (or a list of them) reaches with_overrides quoted, whatever characters it holds.
        "data.root": json.dumps(args.data_root[0] if len(args.data_root) == 1 else args.data_root)
        if args.data_root
        else None,
        "data.source": args.source,
        "train.epochs": args.epochs,
        "train.batch_size": args.batch_size,
        "train.lr": args.lr,
        "train.max_steps": args.max_steps,
        "data.input_size": args.input_size,
    }
    flags += [f"{k}={v}" for k, v in simple.items() if v is not None]
    if args.magnification:
        flags.append(f"data.magnifications=[{', '.join(args.magnification)}]")
    if args.pretrained is not None:
        flags.append(f"model.pretrained={str(args.pretrained).lower()}")
    cfg = cfg.with_overrides(flags)
    if args.model:
        data = cfg.to_dict()
        base = data["models"][0]
        data["models"] = [{**base, "name": n, "label": None} for n in args.model]
        cfg = ExperimentConfig.from_dict(data)
    return cfg.with_overrides(args.overrides)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cv",
        help="cross-validation grid: models x magnifications x patient-level folds",
        description="Run (or continue) an experiment; finished folds are skipped, an interrupted fold resumes. "
        "Stop cleanly with a STOP file in the run folder or SIGTERM/Ctrl-C.",
    )
    add_experiment_args(p)
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.set_defaults(func=cmd_cv)


def cmd_cv(args) -> int:
    cfg = config_from_args(args)
    if getattr(args, "print_config", False):
        print(cfg.to_yaml(), end="")
        return 0
    return run_and_report(cfg, args)


def run_and_report(cfg: ExperimentConfig, args) -> int:
    from trainer.cv import run_experiment

    set_torch_threads(args.threads)
    print(f"run folder: {cfg.run_dir}", flush=True)
    results = run_experiment(cfg, progress=not args.no_progress, cpu=args.cpu)
    md = Path(cfg.run_dir) / "results.md"
    if md.exists():
        print(md.read_text())
    print(f"state: {results['state']}; results: {cfg.run_dir}/results.{{json,csv,md}}")
    return 0 if results["state"] in ("finished", "stopped") else 1

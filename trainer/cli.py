"""``python -m trainer <command> ...``: the trainer's command line. Each command group lives in
``trainer/commands/<group>.py`` and exposes ``register(subparsers)``; the UI calls the same functions."""

from __future__ import annotations

import argparse
import importlib
import sys

from trainer.threads import single_threaded_blas

# Command groups, in help order. A module here adds its own sub-commands.
COMMAND_MODULES = [
    "trainer.commands.data",
    "trainer.commands.cv",
    "trainer.commands.train",
    "trainer.commands.evaluate",
    "trainer.commands.predict",
    "trainer.commands.compare",
    "trainer.commands.context",
    "trainer.commands.export",
    "trainer.commands.explain",
    "trainer.commands.slide",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer", description="histoapp trainer: data, training, evaluation"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with single_threaded_blas():  # numpy's small products must not spin against torch (trainer.threads)
            rc = args.func(args)
    except (FileNotFoundError, ValueError) as exc:  # user errors: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        rc = 2
    if rc:
        sys.exit(rc)
    return 0

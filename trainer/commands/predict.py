"""``python -m trainer predict CHECKPOINT PATH...``: predictions with the trust checks for files, folders or CSV
manifests, one JSON line (or CSV row with ``--csv``) per image; a file that cannot be read gives a row with its
error, never a crash. ``python -m trainer calibrate CHECKPOINT``: fit an existing checkpoint's OOD reference and
temperature (checkpoints made before them, exported app models)."""

from __future__ import annotations

import argparse
import sys

from trainer.threads import set_torch_threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict images (files, folders, manifests) with OOD score and abstention")
    p.add_argument("checkpoint", help="checkpoint folder (.../fold<k>/best, its fold folder, or an exported model)")
    p.add_argument("paths", nargs="+", help="image files, folders of images, or CSV manifests (path,label,...)")
    p.add_argument("--csv", action="store_true", help="CSV instead of JSON lines")
    p.add_argument("--out", help="write here instead of standard output")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--tta", action="store_true", help="also the spread of P(malignant) over 8 flips/rotations (8x)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an abstention bound (trust.*)")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=cmd_predict)

    c = sub.add_parser(
        "calibrate", help="fit a checkpoint's OOD reference and temperature on its fold's training/validation data"
    )
    c.add_argument("checkpoint", help="a run's .../fold<k>/best, or an exported model folder (then --data, --splits)")
    c.add_argument(
        "--data",
        action="append",
        help="dataset root, repeatable: several as one dataset (default: the run's data.root)",
    )
    c.add_argument("--splits", help="the run's splits.json (default: the run folder's)")
    c.add_argument("--fold", type=int, help="default: the fold the checkpoint was trained on (engine.json)")
    c.add_argument("--magnification", help="default: the checkpoint's")
    c.add_argument("--source", help="dataset kind for the index (default: the run's, else auto)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a trust setting (trust.*)")
    c.add_argument("--batch-size", type=int, default=64)
    c.add_argument("--threads", type=int)
    c.set_defaults(func=cmd_calibrate)


def trust_overrides(base, items: list[str]):
    """``TrustConfig`` with ``key=value`` items (``trust.`` prefix optional), checked like a config file."""
    import dataclasses

    import yaml

    from trainer.config import TrustConfig

    data = dataclasses.asdict(base or TrustConfig())
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r} is not key=value")
        key, raw = item.split("=", 1)
        data[key.strip().removeprefix("trust.")] = yaml.safe_load(raw)
    return TrustConfig.from_dict(data, "--set")


def cmd_predict(args) -> int:
    from collections import Counter

    from trainer.models import load_checkpoint
    from trainer.predict import expand_inputs, predict_files, row, write_rows

    set_torch_threads(args.threads)
    ckpt = load_checkpoint(args.checkpoint)
    config = trust_overrides(ckpt.trust.config if ckpt.trust else None, args.set) if args.set else None
    inputs = expand_inputs(args.paths)
    counts: Counter = Counter()

    def rows():
        for inp, pred, error in predict_files(ckpt, inputs, batch_size=args.batch_size, tta=args.tta, config=config):
            counts["error" if error else (pred.abstain or "answered")] += 1
            yield row(inp, pred, error)

    fh = open(args.out, "w", newline="") if args.out else sys.stdout  # noqa: SIM115 (closed below unless stdout)
    try:
        n = write_rows(rows(), fh, as_csv=args.csv, classes=ckpt.classes)
    finally:
        if args.out:
            fh.close()
    note = "" if ckpt.trust is not None else " (this checkpoint has no OOD reference: `trainer calibrate` fits one)"
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{n} rows: {summary or 'nothing'}{note}", file=sys.stderr)
    return 0


def cmd_calibrate(args) -> int:
    from trainer.trust.fit import calibrate_checkpoint

    set_torch_threads(args.threads)
    config = trust_overrides(None, args.set) if args.set else None
    res = calibrate_checkpoint(
        args.checkpoint,
        data_root=args.data,
        splits_file=args.splits,
        fold=args.fold,
        magnification=args.magnification,
        source=args.source,
        config=config,
        batch_size=args.batch_size,
    )

    def f(v, fmt=".4f"):
        return "—" if v is None else format(v, fmt)

    print(f"trust reference saved in {res['checkpoint']} (fold {res['fold']}, {res['magnification']})")
    print(f"  temperature      {f(res['temperature'], '.4g')}")
    print(
        f"  validation ECE   {f(res['ece_before'])} -> {f(res['ece_after'])}  (NLL {f(res['nll_before'])} -> {f(res['nll_after'])})"
    )
    print(f"  OOD threshold    {f(res['ood_threshold'], '.4g')} ({f(res['ood_quantile'], '.1%')} of validation scores)")
    if res.get("test_images"):
        print(
            f"  test patients    {res['test_patients']} ({res['test_images']} images): {f(res['test_ood_share'], '.1%')} "
            f"flagged OOD, ECE {f(res['test_ece_before'])} -> {f(res['test_ece_after'])}"
        )
    return 0

"""``python -m trainer data {summary,splits,synth}``."""
from __future__ import annotations

import argparse
import json

from trainer.data.index import index_dataset
from trainer.data.records import MAGNIFICATIONS
from trainer.data.splits import make_splits


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="index datasets, make patient-level folds, generate synthetic data")
    dsub = p.add_subparsers(dest="data_command", required=True)

    s = dsub.add_parser("summary", help="index a dataset and print counts and problems")
    s.add_argument("root")
    s.add_argument("--source", default="auto", help="breakhis | auto (default)")
    s.add_argument("--json", dest="json_out", help="also write the report as JSON to this file")
    s.add_argument("--no-verify", action="store_true", help="skip decoding every image (faster, finds fewer problems)")
    s.set_defaults(func=cmd_summary)

    sp = dsub.add_parser("splits", help="make patient-level stratified folds and save them as JSON")
    sp.add_argument("root")
    sp.add_argument("--out", required=True, help="splits JSON file to write")
    sp.add_argument("--source", default="auto")
    sp.add_argument("--folds", type=int, default=5)
    sp.add_argument("--seed", type=int, default=42)
    sp.add_argument("--val-fraction", type=float, default=0.15)
    sp.set_defaults(func=cmd_splits)

    g = dsub.add_parser("synth", help="write a synthetic BreakHis-like dataset")
    g.add_argument("root")
    g.add_argument("--patients-per-subtype", type=int, default=2)
    g.add_argument("--images-per-magnification", type=int, default=3)
    g.add_argument("--size", type=int, default=96)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_synth)


def format_summary(report) -> str:
    c = report.counts()
    lines = [f"dataset: {report.root} ({report.source})", f"images: {c['images']}   patients: {c['patients']}   "
             f"benign: {c['by_label']['benign']}   malignant: {c['by_label']['malignant']}", ""]
    mags = [m for m in MAGNIFICATIONS if m in c["by_magnification"]] + [m for m in c["by_magnification"] if m not in MAGNIFICATIONS]
    lines.append(f"{'magnification':<14}{'benign':>8}{'malignant':>11}{'total':>8}")
    for m in mags:
        b = c["by_magnification_label"].get(f"{m}|benign", 0)
        k = c["by_magnification_label"].get(f"{m}|malignant", 0)
        lines.append(f"{m:<14}{b:>8}{k:>11}{b + k:>8}")
    subtypes = sorted({key.split("|")[1] for key in c["by_magnification_subtype"]})
    lines += ["", f"{'subtype':<10}" + "".join(f"{m:>8}" for m in mags)]
    for s in subtypes:
        lines.append(f"{s:<10}" + "".join(f"{c['by_magnification_subtype'].get(f'{m}|{s}', 0):>8}" for m in mags))
    lines += ["", f"problems: {len(report.problems)}"]
    for p in report.problems:
        lines.append(f"  [{p.kind}] {p.path}: {p.detail}")
    return "\n".join(lines)


def cmd_summary(args) -> int:
    report = index_dataset(args.root, args.source, verify=not args.no_verify)
    print(format_summary(report))
    if args.json_out:
        report.write_json(args.json_out)
        print(f"\nreport written to {args.json_out}")
    return 0


def cmd_splits(args) -> int:
    report = index_dataset(args.root, args.source, verify=False)
    splits = make_splits(report.records, args.folds, args.seed, args.val_fraction)
    splits.save(args.out)
    for f in splits.folds:
        print(f"fold {f.fold}: train {len(f.train_patients)}  val {len(f.val_patients)}  test {len(f.test_patients)} patients")
    print(f"splits written to {args.out}")
    return 0


def cmd_synth(args) -> int:
    from trainer.data.synthetic import generate

    root = generate(args.root, patients_per_subtype=args.patients_per_subtype,
                    images_per_magnification=args.images_per_magnification, size=args.size, seed=args.seed)
    print(json.dumps({"root": str(root)}))
    return 0

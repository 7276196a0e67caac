"""``python -m trainer data {summary,splits,synth}``."""

from __future__ import annotations

import argparse
import json

from trainer.data.index import SOURCES, VERIFY_MODES, index_dataset
from trainer.data.records import MAGNIFICATIONS, SUBTYPES
from trainer.data.splits import make_splits


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="index datasets, make patient-level folds, generate synthetic data")
    dsub = p.add_subparsers(dest="data_command", required=True)

    s = dsub.add_parser("summary", help="index a dataset and print counts and problems")
    s.add_argument("root", help="dataset folder (BreakHis, BACH, class folders) or a CSV manifest")
    _source_args(s)
    s.add_argument("--json", dest="json_out", help="also write the report as JSON to this file")
    s.add_argument(
        "--verify",
        choices=VERIFY_MODES,
        default="full",
        help="full: decode every image (default); header: check headers and PNG checksums only (faster); none: skip",
    )
    s.add_argument("--no-verify", dest="verify", action="store_const", const="none", help="same as --verify none")
    s.add_argument("--max-problems", type=int, default=200, help="problems printed (all are in the JSON; default 200)")
    s.set_defaults(func=cmd_summary)

    sp = dsub.add_parser("splits", help="make patient-level stratified folds and save them as JSON")
    sp.add_argument("root")
    sp.add_argument("--out", required=True, help="splits JSON file to write")
    _source_args(sp)
    sp.add_argument("--folds", type=int, default=5)
    sp.add_argument("--seed", type=int, default=42)
    sp.add_argument(
        "--val-fraction",
        type=float,
        default=0.15,
        help="share of each fold's training patients (per class) kept for validation",
    )
    sp.set_defaults(func=cmd_splits)

    g = dsub.add_parser("synth", help="write a synthetic BreakHis-like dataset")
    g.add_argument("root")
    g.add_argument("--patients-per-subtype", type=int, default=2)
    g.add_argument("--images-per-magnification", type=int, default=3)
    g.add_argument("--size", type=int, default=96)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_synth)


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        default="auto",
        choices=SOURCES,
        help="dataset kind (default auto: manifest.csv -> csv, BACH folders -> bach, BreakHis names -> breakhis, class folders -> folder)",
    )
    p.add_argument("--workers", type=int, default=None, help="threads reading images (default: CPUs + 2, at most 8)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar on stderr")


def format_summary(report, max_problems: int | None = None) -> str:
    c = report.counts()
    lines = [
        f"dataset: {report.root} ({report.source})",
        f"images: {c['images']}   patients: {c['patients']} ({c['patients_by_label']['benign']} benign, "
        f"{c['patients_by_label']['malignant']} malignant)   "
        f"benign: {c['by_label']['benign']}   malignant: {c['by_label']['malignant']}",
        "",
    ]
    mags = [m for m in MAGNIFICATIONS if m in c["by_magnification"]] + [
        m for m in c["by_magnification"] if m not in MAGNIFICATIONS
    ]
    lines.append(f"{'magnification':<14}{'benign':>8}{'malignant':>11}{'total':>8}")
    for m in mags:
        b = c["by_magnification_label"].get(f"{m}|benign", 0)
        k = c["by_magnification_label"].get(f"{m}|malignant", 0)
        lines.append(f"{m:<14}{b:>8}{k:>11}{b + k:>8}")
    subtypes = sorted(
        {key.split("|")[1] for key in c["by_magnification_subtype"]},
        key=lambda s: (SUBTYPES.index(s) if s in SUBTYPES else 99, s),
    )
    lines += ["", f"{'subtype':<10}" + "".join(f"{m:>8}" for m in mags) + f"{'total':>8}"]
    for s in subtypes:
        row = [c["by_magnification_subtype"].get(f"{m}|{s}", 0) for m in mags]
        lines.append(f"{s:<10}" + "".join(f"{n:>8}" for n in row) + f"{sum(row):>8}")
    diff = report.official_comparison()
    if report.generated:
        lines += ["", "generated data (trainer.data.synthetic, not real tissue): not compared with the BreakHis counts"]
    if diff is not None:
        lines.append("")
        if not diff:
            lines.append("official BreakHis counts: matches the official counts (7,909 images, 82 patients)")
        else:
            lines.append(f"official BreakHis counts: {len(diff)} difference(s)")
            lines += [f"  {d}" for d in diff]
    for note in report.notes:
        lines += ["", f"note: {note}"]
    lines += [
        "",
        f"problems: {len(report.problems)}"
        + (f" ({', '.join(f'{k}: {n}' for k, n in c['problems'].items())})" if report.problems else ""),
    ]
    shown = report.problems if max_problems is None else report.problems[:max_problems]
    for p in shown:
        lines.append(f"  [{p.kind}] {p.path}: {p.detail}")
    if len(shown) < len(report.problems):
        lines.append(f"  ... and {len(report.problems) - len(shown)} more (write them all with --json)")
    return "\n".join(lines)


def cmd_summary(args) -> int:
    report = index_dataset(args.root, args.source, verify=args.verify, workers=args.workers, progress=args.progress)
    print(format_summary(report, args.max_problems))
    if args.json_out:
        report.write_json(args.json_out)
        print(f"\nreport written to {args.json_out}")
    return 0


def cmd_splits(args) -> int:
    report = index_dataset(args.root, args.source, verify="none", workers=args.workers, progress=args.progress)
    splits = make_splits(report.records, args.folds, args.seed, args.val_fraction, label_level=report.label_level)
    splits.save(args.out)
    if report.problems:
        print(
            f"{len(report.problems)} problem(s) in the dataset (see `python -m trainer data summary {args.root}`); "
            "problem files are left out of the folds"
        )
    labels = splits.patient_labels
    for f in splits.folds:
        parts = []
        for name, group in (("train", f.train_patients), ("val", f.val_patients), ("test", f.test_patients)):
            mal = sum(labels[p] for p in group)
            parts.append(f"{name} {len(group)} ({len(group) - mal} B / {mal} M)")
        print(f"fold {f.fold}: " + "   ".join(parts) + " patients")
    print(f"splits written to {args.out}")
    return 0


def cmd_synth(args) -> int:
    from trainer.data.synthetic import generate

    root = generate(
        args.root,
        patients_per_subtype=args.patients_per_subtype,
        images_per_magnification=args.images_per_magnification,
        size=args.size,
        seed=args.seed,
    )
    print(json.dumps({"root": str(root)}))
    return 0

"""``python -m trainer data {summary,splits,synth}``."""

from __future__ import annotations

import argparse
import json

from trainer.data.grouping import PATIENT_GROUPINGS, grouping_note, patient_groups
from trainer.data.index import VERIFY_MODES
from trainer.data.records import MAGNIFICATIONS, SUBTYPES
from trainer.data.roots import index_roots
from trainer.data.sources import AUTO, SOURCES
from trainer.data.splits import make_splits

# Problems are grouped by kind in the printed summary, with this many example files each (all are in --json).
EXAMPLES_PER_KIND = 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="index datasets, make patient-level folds, generate synthetic data")
    dsub = p.add_subparsers(dest="data_command", required=True)

    s = dsub.add_parser("summary", help="index a dataset and print counts and problems")
    s.add_argument(
        "root",
        nargs="+",
        help="dataset folder (BreakHis, BACH, IDC, class folders) or a CSV manifest; several: indexed as one dataset",
    )
    _source_args(s)
    s.add_argument("--json", dest="json_out", help="also write the report as JSON to this file")
    s.add_argument(
        "--verify",
        choices=VERIFY_MODES,
        default="full",
        help="full: decode every image (default); header: check headers and PNG checksums only (faster); none: skip",
    )
    s.add_argument("--no-verify", dest="verify", action="store_const", const="none", help="same as --verify none")
    s.add_argument(
        "--examples",
        "--max-problems",
        dest="examples",
        type=int,
        default=EXAMPLES_PER_KIND,
        help=f"example files printed per problem kind (default {EXAMPLES_PER_KIND}; every problem is in the --json report)",
    )
    s.set_defaults(func=cmd_summary)

    sp = dsub.add_parser("splits", help="make patient-level stratified folds and save them as JSON")
    sp.add_argument("root", nargs="+", help="dataset folder(s); several are indexed as one dataset")
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
        default=AUTO,
        choices=(AUTO, *SOURCES),
        help=f"dataset kind (default auto: the first that a folder holds of {', '.join(SOURCES)})",
    )
    p.add_argument(
        "--patient-grouping",
        choices=PATIENT_GROUPINGS,
        default="group",
        help="data.patient_grouping: group (default, cautious): BreakHis slide ids sharing <YY>-<number> are one "
        "patient for the folds; slide: each slide id its own patient",
    )
    p.add_argument("--workers", type=int, default=None, help="threads reading images (default: CPUs + 2, at most 8)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar on stderr")


def format_summary(report, examples: int | None = EXAMPLES_PER_KIND) -> str:
    """The printed summary: counts (per magnification x class, and per subtype when records have one; for
    per-patch data one class-mix row per patient), the official BreakHis comparison, notes, and the problems
    grouped by kind with a count and ``examples`` example files each (None: every file)."""
    c = report.counts()
    patch = report.label_level == "patch"
    if patch:
        mix = report.patient_class_mix()
        both = sum(1 for row in mix if row["benign"] and row["malignant"])
        who = f"labels per patch; {both} hold both classes"
    else:
        who = f"{c['patients_by_label']['benign']} benign, {c['patients_by_label']['malignant']} malignant"
    parts = getattr(report, "parts", [])  # several roots indexed as one (trainer.data.roots.UnionReport)
    lines = [
        f"dataset: {report.root} ({report.source})",
        *[f"  {p.root} ({p.source}): {len(p.records)} images, {len(p.patients)} patients" for p in parts],
        f"images: {c['images']}   patients: {c['patients']} ({who})   "
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
    if patch:
        lines += ["", *_class_mix_table(mix)]
    if any(r.subtype for r in report.records):
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
    lines += ["", *_problem_lines(report.problems, examples)]
    return "\n".join(lines)


def _class_mix_table(mix: list[dict]) -> list[str]:
    """Per-patch data: each patient's benign / malignant patches and malignant share, one row each."""
    width = max([len("patient"), len("all"), *(len(r["patient_id"]) for r in mix)]) + 2
    lines = [f"{'patient':<{width}}{'benign':>8}{'malignant':>11}{'total':>8}{'% malignant':>13}"]

    def row(name: str, b: int, m: int) -> str:
        share = f"{100 * m / (b + m):.1f}" if b + m else "-"
        return f"{name:<{width}}{b:>8}{m:>11}{b + m:>8}{share:>13}"

    lines += [row(r["patient_id"], r["benign"], r["malignant"]) for r in mix]
    lines.append(row("all", sum(r["benign"] for r in mix), sum(r["malignant"] for r in mix)))
    return lines


def _problem_lines(problems, examples: int | None) -> list[str]:
    """``problems: N``, then one group per kind (in order of first appearance): its count and a few files."""
    if not problems:
        return ["problems: 0"]
    by_kind: dict[str, list] = {}
    for p in problems:
        by_kind.setdefault(p.kind, []).append(p)
    lines = [
        f"problems: {len(problems)} ({', '.join(f'{k}: {len(v)}' for k, v in by_kind.items())}); "
        "problem files are skipped"
    ]
    left_out = 0
    for kind, group in by_kind.items():
        shown = group if examples is None else group[: max(0, examples)]
        lines.append(f"  {kind}: {len(group)}")
        lines += [f"    {p.path}: {p.detail}" for p in shown]
        if len(shown) < len(group):
            lines.append(f"    ... and {len(group) - len(shown)} more")
            left_out += len(group) - len(shown)
    if left_out:
        lines.append("  every problem with its file: --json FILE (or --examples N to print more per kind)")
    return lines


def _index(args, verify):
    """The dataset the arguments name, with the patient-grouping note added to its report."""
    report = index_roots(args.root, args.source, verify=verify, workers=args.workers, progress=args.progress)
    note = grouping_note(report.records, args.patient_grouping)
    if note:
        report.notes.append(note)
    return report


def cmd_summary(args) -> int:
    report = _index(args, args.verify)
    print(format_summary(report, args.examples))
    if args.json_out:
        report.write_json(args.json_out)
        print(f"\nreport written to {args.json_out}")
    return 0


def cmd_splits(args) -> int:
    report = _index(args, "none")
    groups = patient_groups(report.records, args.patient_grouping)
    splits = make_splits(
        report.records, args.folds, args.seed, args.val_fraction, label_level=report.label_level, groups=groups
    )
    splits.save(args.out)
    if report.problems:
        print(
            f"{len(report.problems)} problem(s) in the dataset (see `python -m trainer data summary "
            f"{' '.join(args.root)}`); "
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

"""Make ``assets/data/idc-mini/``: a small, patient-balanced subset of the real IDC patches that ships with the
project (the quick-demo preset trains on it; users do not have ``../shared/data``).

Rule (rerunnable; the same input gives the same files):

1. Only full 50x50 tiles are candidates (the IDC dataset also has smaller edge tiles).
2. Patients: those with at least ``--per-class`` full tiles of *each* class, in ascending patient-id order; the
   first ``--patients`` of them are taken.
3. Per patient and class: ``--per-class`` tiles drawn without replacement with ``numpy.random.default_rng(seed)``
   from that patient's candidates sorted by file name (one generator, patients in id order, class 0 then 1).
4. Files are copied byte for byte in the IDC layout ``<patient>/<0|1>/<name>.png``; ``MANIFEST.csv``
   (``path,label,patient_id``) lists them, sorted by path. ``SOURCE.md`` is written by hand (it cites this
   script and its arguments).

    uv run python scripts/make_idc_mini.py [--src ../shared/data/idc] [--out assets/data/idc-mini]
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABELS = {0: "benign", 1: "malignant"}  # class0 = no IDC in the patch, class1 = IDC in the patch
TILE = (50, 50)


def candidates(src: Path) -> dict[str, dict[int, list[str]]]:
    """``{patient: {class: [manifest path, ...]}}`` of the full 50x50 tiles listed in ``src/MANIFEST.csv``."""
    from PIL import Image

    out: dict[str, dict[int, list[str]]] = {}
    with open(src / "MANIFEST.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            label = {"benign": 0, "malignant": 1}[row["label"]]
            with Image.open(src / row["path"]) as im:
                if im.size != TILE:
                    continue
            out.setdefault(row["patient_id"], {0: [], 1: []})[label].append(row["path"])
    return out


def choose(
    pool: dict[str, dict[int, list[str]]], n_patients: int, per_class: int, seed: int
) -> dict[str, dict[int, list[str]]]:
    import numpy as np

    eligible = sorted((p for p, c in pool.items() if min(len(c[0]), len(c[1])) >= per_class), key=int)
    if len(eligible) < n_patients:
        raise SystemExit(f"only {len(eligible)} patients have {per_class} full tiles of each class")
    rng = np.random.default_rng(seed)
    chosen = {}
    for patient in eligible[:n_patients]:
        chosen[patient] = {}
        for label in (0, 1):
            names = sorted(pool[patient][label])
            picks = rng.choice(len(names), size=per_class, replace=False)
            chosen[patient][label] = sorted(names[i] for i in picks)
    return chosen


def write(src: Path, out: Path, chosen: dict[str, dict[int, list[str]]]) -> int:
    for patient in chosen:  # a rerun replaces the patches, not SOURCE.md
        shutil.rmtree(out / patient, ignore_errors=True)
    for stale in (p for p in out.iterdir() if p.is_dir() and p.name not in chosen) if out.is_dir() else ():
        shutil.rmtree(stale)
    rows = []
    for patient, by_class in chosen.items():
        for label, paths in by_class.items():
            for rel in paths:
                dst = out / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel, dst)
                rows.append((rel, LABELS[label], patient))
    rows.sort()
    with open(out / "MANIFEST.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["path", "label", "patient_id"])
        w.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=str(ROOT.parent / "shared" / "data" / "idc"))
    ap.add_argument("--out", default=str(ROOT / "assets" / "data" / "idc-mini"))
    ap.add_argument("--patients", type=int, default=12)
    ap.add_argument("--per-class", type=int, default=90)
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args(argv)
    src, out = Path(a.src), Path(a.out)
    chosen = choose(candidates(src), a.patients, a.per_class, a.seed)
    out.mkdir(parents=True, exist_ok=True)
    n = write(src, out, chosen)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{n} patches from {len(chosen)} patients ({', '.join(chosen)}) -> {out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

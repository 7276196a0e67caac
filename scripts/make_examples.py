"""Copy the Predict tab's example patches into ``assets/examples/`` from the real data in ``../shared/data``
(byte for byte; no image is re-encoded here). The selection rule is fixed, so a rerun gives the same files:

* **IDC** (``idc/`` + ``idc-more/``, 50x50 PNG tiles at 40x): the test patients of fold 0 of
  ``results/idc/idc211/splits.json`` (the bundled demo models are fold 0 of that split, so they never saw these
  patients) that are *not* in ``assets/data/idc-mini`` (the quick-demo training set) are shuffled with
  ``numpy.random.default_rng(seed)``; walking that order, the first ``--idc-per-class`` patients with a full
  50x50 benign tile give one benign tile each, then the next ``--idc-per-class`` with a malignant tile one
  malignant tile each (every tile from a different patient). From each patient, one full tile of that class is
  drawn with the same generator from its tiles sorted by name.
* **BreakHis** (``breakhis/``, 700x460 JPEG): one image per magnification (40X, 100X, 200X, 400X) and class
  (benign, then malignant). In ``MANIFEST.csv`` order (sorted by path), the first image whose subtype and
  patient are both not used yet is taken; if there is none, the first whose patient is not used yet.

File names say what each example is: ``idc_<class>_40X_patient<id>.png`` and
``breakhis_<class>_<subtype>_<magnification>_patient<id>.jpg`` (subtype words joined by ``-``). The Predict tab
reads the class and magnification from them (``histoapp.ui.examples``). Every other image in the folder is
removed; README.md is kept (it is written by hand, with the list this script prints).

    uv run python scripts/make_examples.py [--data ../shared/data] [--out assets/examples]
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MAGNIFICATIONS = ("40X", "100X", "200X", "400X")


def _manifest(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: r["path"])


def idc_examples(roots: list[Path], mini: Path, splits: Path, per_class: int, seed: int) -> list[tuple[str, str, str]]:
    """``[(source path, file name, label)]``."""
    import json

    import numpy as np
    from PIL import Image

    rows = [{**r, "file": root / r["path"]} for root in roots for r in _manifest(root / "MANIFEST.csv")]
    used = {r["patient_id"] for r in _manifest(mini / "MANIFEST.csv")} if (mini / "MANIFEST.csv").is_file() else set()
    unseen = set(json.loads(splits.read_text())["folds"][0]["test_patients"])
    patients = sorted(({r["patient_id"] for r in rows} & unseen) - used, key=int)
    rng = np.random.default_rng(seed)
    order = [patients[i] for i in rng.permutation(len(patients))]
    out, taken = [], set()
    for label in ("benign", "malignant"):
        for patient in (p for p in order if p not in taken):
            if sum(1 for _, _, lab in out if lab == label) == per_class:
                break
            tiles = []
            for r in rows:
                if r["patient_id"] == patient and r["label"] == label:
                    with Image.open(r["file"]) as im:
                        if im.size == (50, 50):
                            tiles.append(r["file"])
            if tiles:
                pick = tiles[int(rng.integers(len(tiles)))]
                out.append((str(pick), f"idc_{label}_40X_patient{patient}.png", label))
                taken.add(patient)
    return out


def breakhis_examples(breakhis: Path) -> list[tuple[str, str, str]]:
    rows = _manifest(breakhis / "MANIFEST.csv")
    subtypes: set[str] = set()
    patients: set[str] = set()
    out = []
    for mag in MAGNIFICATIONS:
        for label in ("benign", "malignant"):
            pool = [r for r in rows if r["magnification"] == mag and r["label"] == label]
            fresh = [r for r in pool if r["patient_id"] not in patients]
            r = next((r for r in fresh if r["subtype"] not in subtypes), fresh[0] if fresh else None)
            if r is None:
                raise SystemExit(f"no BreakHis {label} image at {mag} from an unused patient")
            subtypes.add(r["subtype"])
            patients.add(r["patient_id"])
            sub = r["subtype"].replace("_", "-")
            out.append((str(breakhis / r["path"]), f"breakhis_{label}_{sub}_{mag}_patient{r['patient_id']}.jpg", label))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--mini", default=str(ROOT / "assets" / "data" / "idc-mini"))
    ap.add_argument("--splits", default=str(ROOT / "results" / "idc" / "idc211" / "splits.json"))
    ap.add_argument("--out", default=str(ROOT / "assets" / "examples"))
    ap.add_argument("--idc-per-class", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args(argv)
    data, out = Path(a.data), Path(a.out)
    chosen = idc_examples(
        [data / "idc", data / "idc-more"], Path(a.mini), Path(a.splits), a.idc_per_class, a.seed
    ) + breakhis_examples(data / "breakhis")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file() and old.suffix.lower() in IMAGE_SUFFIXES:
            old.unlink()
    for src, name, _ in chosen:
        shutil.copyfile(src, out / name)
        print(f"{name}\t{Path(src).relative_to(data)}")


if __name__ == "__main__":
    main()

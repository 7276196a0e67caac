"""IDC (Janowczyk & Madabhushi 2016; Kaggle "Breast Histopathology Images"): 50x50 patches labelled per patch,
``<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from trainer.data.index import IndexReport, Problem, finish, is_image_name, iter_image_files, triage
from trainer.data.records import Record
from trainer.data.sources.common import Source, parse_label
from trainer.data.sources.manifest import find_manifest

# IDC (Janowczyk & Madabhushi 2016; Kaggle "Breast Histopathology Images"): <patient>/<0|1>/<name>.png, the name
# giving the patient, where on the slide the 50x50 patch was cut, and its class (1 = IDC in the patch).
_IDC_NAME = re.compile(r"^(?P<patient>\d+)_idx5_x(?P<x>\d+)_y(?P<y>\d+)_class(?P<cls>[01])\.png$", re.IGNORECASE)
# The IDC slides were scanned at 40x (Cruz-Roa et al. 2014).
IDC_MAGNIFICATION = "40X"


def parse_idc_name(name: str) -> tuple[str, int, int, int] | None:
    """``(patient_id, x, y, label)`` from an IDC patch name, or None."""
    m = _IDC_NAME.match(Path(name).name)
    return (m["patient"], int(m["x"]), int(m["y"]), int(m["cls"])) if m else None


def is_idc_layout(root: Path, probe_patients: int = 3) -> bool:
    """``root/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``: checks the first few patient folders."""
    if not root.is_dir():
        return False
    patients = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())[:probe_patients]
    if not patients:
        return False
    for patient in patients:
        names = [f.name for c in ("0", "1") if (patient / c).is_dir() for f in (patient / c).iterdir()][:20]
        if not names or not all(_IDC_NAME.match(n) for n in names if is_image_name(Path(n))):
            return False
    return True


def index_idc(root: str | Path, *, verify=True, workers=None, progress=False) -> IndexReport:
    """IDC patches (``<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``), labelled per patch: class 1 =
    invasive ductal carcinoma in the patch (malignant), 0 = none (benign, which here means "no IDC in this
    patch", not a benign tumour). The patient id and the patch's slide coordinates come from the name. When the
    folder has a ``MANIFEST.csv`` (``path,label,patient_id``), it says which files belong to the dataset (a
    listed file the copy lacks is ``missing_file``); otherwise the patient folders are walked."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    report = IndexReport(str(root), "idc", label_level="patch")
    manifest = find_manifest(root)
    if manifest is not None:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        if rows and "path" not in {k.strip().lower() for k in rows[0]}:
            raise ValueError(f"{manifest}: no path column (an IDC manifest has path,label,patient_id)")
        listed = [(root / (r.get("path") or "").strip(), (r.get("label") or "").strip()) for r in rows]
        # Patches beside the manifest that it does not list are still part of the copy: report them (and other
        # stray files, as without a manifest; the usual side files such as SOURCE.md stay quiet).
        known = {p for p, _ in listed}
        extra = [p for p in iter_image_files(root) if p not in known and triage(p, report)]
        for p in extra:
            report.problems.append(Problem(str(p), "not_in_manifest", f"not listed in {manifest.name} (skipped)"))
    else:
        listed = [(p, "") for p in iter_image_files(root) if triage(p, report)]
    candidates = []
    for path, manifest_label in listed:
        parsed = parse_idc_name(path.name)
        if parsed is None:
            report.problems.append(
                Problem(str(path), "unparseable_name", "not an IDC patch name (<patient>_idx5_x<X>_y<Y>_class<C>.png)")
            )
            continue
        patient, x, y, label = parsed
        folder = path.parent.name
        try:
            if folder in ("0", "1") and int(folder) != label:
                raise ValueError(f"class folder {folder} contradicts class{label} in the name")
            if manifest_label and parse_label(manifest_label) != label:
                raise ValueError(f"manifest label {manifest_label!r} contradicts class{label} in the name")
        except ValueError as exc:
            report.problems.append(Problem(str(path), "label_conflict", str(exc)))
            continue
        candidates.append(Record(str(path), patient, label, None, IDC_MAGNIFICATION, "idc", x, y))
    if not candidates and not report.problems:
        raise ValueError(f"{root}: no IDC patches found")
    report.notes.append(
        "IDC: labels are per patch (malignant = invasive ductal carcinoma in the patch; benign = no IDC in the "
        "patch, not a benign tumour), so a patient holds both classes; folds group patches by patient."
    )
    return finish(report, candidates, verify=verify, workers=workers, progress=progress)


SOURCE = Source("idc", "IDC patches", index_idc, is_idc_layout)

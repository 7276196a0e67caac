"""A CSV manifest (``data.source: csv``): a .csv file, or a folder with ``manifest.csv``, one row per image; and
its writer ``write_manifest``, so an export and a re-index round-trip. (Named for what it reads: a module
``csv`` here would read as the standard library's.)"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

from trainer.data.index import IndexReport, Problem, finish
from trainer.data.records import LABELS, SUBTYPE_LABEL, Record, normalise_magnification
from trainer.data.sources.common import NO_PATIENT_NOTE, Source, breakhis_info, parse_label, parse_subtype

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("path", "label", "patient_id", "subtype", "magnification", "dataset")


def find_manifest(root: Path) -> Path | None:
    if root.is_file():
        return root if root.suffix.lower() == ".csv" else None
    for p in sorted(root.glob("*")):
        if p.is_file() and p.name.lower() == MANIFEST_NAME:
            return p
    return None


def index_csv(root: str | Path, *, verify=True, workers=None, progress=False) -> IndexReport:
    """A CSV manifest (a .csv file, or a folder with ``manifest.csv``): columns ``path,label`` required
    (label benign/malignant or 0/1), ``patient_id,subtype,magnification,dataset`` optional. Relative paths are
    relative to the CSV's folder. A bad row is reported with its row number (1 = first data row) and skipped."""
    root = Path(root)
    manifest = find_manifest(root) if root.exists() else None
    if manifest is None:
        raise FileNotFoundError(f"{root}: no CSV manifest ({MANIFEST_NAME}) found")
    report = IndexReport(str(root), "csv")
    # The stdlib csv module is enough for six columns and keeps row numbers exact (pandas would guess types).
    try:
        fh = open(manifest, newline="", encoding="utf-8-sig")  # noqa: SIM115 (closed by `with fh` below; only opening errors are caught here)
    except OSError as exc:
        raise FileNotFoundError(f"{manifest}: cannot read the manifest ({exc.strerror or exc})") from None
    with fh:
        reader = csv.DictReader(fh)
        cols = {c.strip().lower(): c for c in (reader.fieldnames or []) if c}
        missing = [c for c in ("path", "label") if c not in cols]
        if missing:
            raise ValueError(
                f"{manifest}: missing column(s) {', '.join(missing)}; a manifest needs path,label "
                f"(optional: {', '.join(MANIFEST_COLUMNS[2:])}); found: {', '.join(reader.fieldnames or []) or 'nothing'}"
            )
        candidates, no_patient = [], 0
        for n, row in enumerate(reader, start=1):
            get = lambda c, row=row: (row.get(cols[c]) or "").strip() if c in cols else ""  # noqa: E731
            where = f"{manifest.name} row {n}"
            raw = get("path")
            if not raw:
                report.problems.append(Problem(f"{manifest}:row {n}", "missing_path", f"{where}: empty path"))
                continue
            path = Path(os.path.normpath(raw if os.path.isabs(raw) else manifest.parent / raw))
            try:
                label = parse_label(get("label"))
                subtype = parse_subtype(get("subtype"))
                if subtype is not None and SUBTYPE_LABEL[subtype] != label:
                    raise ValueError(f"subtype {subtype} contradicts label {LABELS[label]}")
                mag = normalise_magnification(get("magnification") or None)
            except ValueError as exc:
                report.problems.append(Problem(str(path), "invalid_row", f"{where}: {exc}"))
                continue
            info = breakhis_info(path)
            pid = get("patient_id")
            if not pid:
                if info is not None:
                    pid = info.patient_id
                else:
                    pid, no_patient = Path(raw).with_suffix("").as_posix(), no_patient + 1
            if info is not None:
                mag = mag or info.magnification
                if subtype is None and info.label == label:
                    subtype = info.subtype
            dataset = get("dataset") or ("breakhis" if info is not None else "csv")
            candidates.append(Record(str(path), pid, label, subtype, mag, dataset))
    if no_patient:
        report.notes.append(NO_PATIENT_NOTE.format(n=no_patient))
    both = _patients_in_both_classes(candidates)
    if both:
        report.label_level = "patch"
        report.notes.append(
            f"{len(both)} patient(s) hold both classes, so this manifest's labels are per patch (folds group "
            "patches by patient and stratify by patch label)."
        )
    return finish(report, candidates, verify=verify, workers=workers, progress=progress)


def _patients_in_both_classes(records: Iterable[Record]) -> set[str]:
    seen: dict[str, set[int]] = {}
    for r in records:
        seen.setdefault(r.patient_id, set()).add(r.label)
    return {p for p, labels in seen.items() if len(labels) > 1}


def write_manifest(records: Iterable[Record], path: str | Path, *, relative: bool = True) -> Path:
    """Write ``records`` as a CSV manifest with ``MANIFEST_COLUMNS`` (paths relative to the CSV's folder
    when ``relative``); ``index_dataset(path)`` reads it back to the same records."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(MANIFEST_COLUMNS)
        for r in records:
            p = os.path.relpath(r.path, path.parent) if relative else r.path
            w.writerow(
                [Path(p).as_posix(), LABELS[r.label], r.patient_id, r.subtype or "", r.magnification or "", r.dataset]
            )
    os.replace(tmp, path)  # never leave a half-written manifest
    return path


SOURCE = Source("csv", "CSV manifest", index_csv, lambda root: find_manifest(root) is not None)

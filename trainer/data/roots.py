"""Several dataset roots indexed as one dataset: ``data.root`` as a list, ``--data-root`` given more than once,
``trainer data summary A B`` (e.g. ``idc/`` + ``idc-more/``: 211 IDC patients).

Each root is indexed on its own by ``index_dataset`` (``auto`` detects each one's source); the union holds the
roots' records in order and their problems, plus what only the union shows:

- **Patient ids.** Within one dataset kind (``Record.dataset``: idc, breakhis, ...) the same id in two roots is
  the same patient: IDC's patient numbers and BreakHis slide ids are the dataset's own, and one dataset copied into
  two folders must not put a patient in two folds. The summary names such ids. Across kinds (IDC's ``9023`` and a
  manifest's ``9023``) an id names different people: a shared id is written ``<dataset>:<id>`` in every kind,
  so they stay apart.
- **The same image twice** (an IDC or BreakHis file name in two roots: those names are unique in their datasets)
  is kept once and reported (``duplicate_name``); patients under two classes or subtypes are checked over the union.
- **Label level**: per patch when any root's labels are (per-patch folds still group by patient)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trainer.data.index import IndexReport, Problem, patient_problems
from trainer.data.sources import index_dataset

# Datasets whose file names are unique across the whole dataset, so a name in two roots is one image twice.
_UNIQUE_NAMES = ("idc", "breakhis")
_PATIENT_KINDS = ("patient_in_both_classes", "patient_in_two_subtypes")
_SHOWN = 5  # ids named in a note


@dataclass
class UnionReport(IndexReport):
    """An ``IndexReport`` of several roots; ``parts`` are the roots' own reports."""

    parts: list[IndexReport] = field(default_factory=list)

    def to_json(self) -> dict:
        out = super().to_json()
        out["roots"] = [
            {
                "root": p.root,
                "source": p.source,
                "images": len(p.records),
                "patients": len(p.patients),
                "label_level": p.label_level,
            }
            for p in self.parts
        ]
        return out


def index_roots(
    roots: str | Path | Sequence[str | Path],
    source: str = "auto",
    *,
    verify: bool | str = True,
    workers: int | None = None,
    progress: bool = False,
) -> IndexReport:
    """Index one root (``index_dataset``'s report, unchanged) or several as one dataset (a ``UnionReport``)."""
    roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
    if not roots:
        raise ValueError("no dataset folder given")
    kw = dict(verify=verify, workers=workers, progress=progress)
    if len(roots) == 1:
        return index_dataset(roots[0], source, **kw)
    seen: dict[Path, str | Path] = {}
    for r in roots:
        key = Path(r).resolve()
        if key in seen:
            raise ValueError(f"dataset folder {r} is given twice (as {seen[key]})")
        seen[key] = r
    return union([index_dataset(r, source, **kw) for r in roots])


def _listed(ids) -> str:
    ids = sorted(ids)
    return ", ".join(ids[:_SHOWN]) + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


def union(parts: Sequence[IndexReport]) -> UnionReport:
    """One report of several roots' reports (see the module docstring for the patient-id rule)."""
    kinds: dict[str, set[str]] = defaultdict(set)  # patient id -> dataset kinds holding it
    roots_of: dict[tuple[str, str], set[int]] = defaultdict(set)  # (kind, id) -> roots holding it
    for i, part in enumerate(parts):
        for r in part.records:
            kinds[r.patient_id].add(r.dataset)
            roots_of[(r.dataset, r.patient_id)].add(i)
    clash = {pid for pid, k in kinds.items() if len(k) > 1}
    report = UnionReport(
        root=" + ".join(p.root for p in parts),
        source="+".join(dict.fromkeys(p.source for p in parts)),
        label_level="patch" if any(p.label_level == "patch" for p in parts) else "patient",
        generated=any(p.generated for p in parts),
        parts=list(parts),
    )
    names: dict[tuple[str, str], str] = {}
    for part in parts:
        report.problems += [p for p in part.problems if p.kind not in _PATIENT_KINDS]
        for note in part.notes:
            if note not in report.notes:
                report.notes.append(note)
        for r in part.records:
            key = (r.dataset, r.image_id.lower())
            if r.dataset in _UNIQUE_NAMES and key in names:
                report.problems.append(
                    Problem(r.path, "duplicate_name", f"same {r.dataset} file name as {names[key]} (kept once)")
                )
                continue
            names[key] = r.path
            if r.patient_id in clash:
                r = dataclasses.replace(r, patient_id=f"{r.dataset}:{r.patient_id}")
            report.records.append(r)
    report.problems += patient_problems(report.records, report.label_level)
    shared = {pid for (_, pid), where in roots_of.items() if len(where) > 1 and pid not in clash}
    report.notes.append(
        f"{len(parts)} dataset folders indexed as one dataset"
        + (
            f"; {len(shared)} patient id(s) appear in more than one of them and are taken as the same patient "
            f"(one fold): {_listed(shared)}"
            if shared
            else "; no patient id appears in two of them"
        )
    )
    if clash:
        report.notes.append(
            f"{len(clash)} patient id(s) name patients of different datasets and are written <dataset>:<id> so "
            f"they stay apart: {_listed(clash)}"
        )
    return report

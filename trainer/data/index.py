"""Index a dataset folder into records plus a report of every problem found.

Problems (unparseable names, unreadable images, duplicates, a patient under two classes) are listed with
their file and skipped; they never abort the index and are never dropped silently."""
from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trainer.data.breakhis import IMAGE_SUFFIXES, parse_name
from trainer.data.images import ImageError, load_rgb
from trainer.data.records import MAGNIFICATIONS, Record


@dataclass
class Problem:
    path: str
    kind: str  # unparseable_name | unreadable_image | duplicate_file | patient_in_both_classes | ...
    detail: str


@dataclass
class IndexReport:
    root: str
    source: str
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    # --- summaries -----------------------------------------------------------------------------------
    @property
    def patients(self) -> list[str]:
        return sorted({r.patient_id for r in self.records})

    def counts(self) -> dict:
        by_mag = Counter(r.magnification or "?" for r in self.records)
        by_label = Counter(r.label for r in self.records)
        by_mag_label = Counter((r.magnification or "?", r.label) for r in self.records)
        by_mag_subtype = Counter((r.magnification or "?", r.subtype or "?") for r in self.records)
        return {
            "images": len(self.records),
            "patients": len(self.patients),
            "by_magnification": dict(sorted(by_mag.items(), key=lambda kv: _mag_key(kv[0]))),
            "by_label": {"benign": by_label.get(0, 0), "malignant": by_label.get(1, 0)},
            "by_magnification_label": {f"{m}|{'malignant' if y else 'benign'}": n for (m, y), n in sorted(by_mag_label.items(), key=lambda kv: (_mag_key(kv[0][0]), kv[0][1]))},
            "by_magnification_subtype": {f"{m}|{s}": n for (m, s), n in sorted(by_mag_subtype.items(), key=lambda kv: (_mag_key(kv[0][0]), kv[0][1]))},
            "problems": dict(Counter(p.kind for p in self.problems)),
        }

    def to_json(self) -> dict:
        return {"root": self.root, "source": self.source, "counts": self.counts(), "problems": [asdict(p) for p in self.problems]}

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path


def _mag_key(mag: str) -> int:
    return MAGNIFICATIONS.index(mag) if mag in MAGNIFICATIONS else 99


def iter_image_files(root: Path):
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            yield p


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def index_breakhis(root: str | Path, *, verify: bool = True) -> IndexReport:
    """Index the official BreakHis root, any folder below it, or a flat folder of BreakHis-named files."""
    root = Path(root)
    report = IndexReport(str(root), "breakhis")
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    seen: dict[str, str] = {}
    patient_subtypes: dict[str, set[str]] = defaultdict(set)
    patient_labels: dict[str, set[int]] = defaultdict(set)
    for path in iter_image_files(root):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            if path.suffix.lower() not in (".csv", ".txt", ".json", ".md", ".db"):
                report.problems.append(Problem(str(path), "not_an_image_file", f"unexpected file type {path.suffix!r}"))
            continue
        try:
            parsed = parse_name(path.name)
        except ValueError as exc:
            report.problems.append(Problem(str(path), "unparseable_name", str(exc)))
            continue
        if verify:
            try:
                load_rgb(path)
            except ImageError as exc:
                report.problems.append(Problem(str(path), "unreadable_image", exc.reason))
                continue
        digest = _digest(path)
        if digest in seen:
            report.problems.append(Problem(str(path), "duplicate_file", f"same content as {seen[digest]}"))
            continue
        seen[digest] = str(path)
        rec = Record(str(path), parsed.patient_id, parsed.label, parsed.subtype, parsed.magnification, "breakhis")
        report.records.append(rec)
        patient_subtypes[rec.patient_id].add(parsed.subtype)
        patient_labels[rec.patient_id].add(parsed.label)
    for pid in sorted(patient_subtypes):
        if len(patient_labels[pid]) > 1:
            report.problems.append(Problem(pid, "patient_in_both_classes", f"patient {pid} has benign and malignant images"))
        elif len(patient_subtypes[pid]) > 1:
            report.problems.append(Problem(pid, "patient_in_two_subtypes", f"patient {pid} appears under subtypes {', '.join(sorted(patient_subtypes[pid]))}"))
    return report


def index_dataset(root: str | Path, source: str = "auto", *, verify: bool = True) -> IndexReport:
    """Index ``root`` with the named source (``breakhis``; ``auto`` picks by what is there)."""
    if source in ("auto", "breakhis"):
        return index_breakhis(root, verify=verify)
    raise ValueError(f"unknown data source {source!r}")

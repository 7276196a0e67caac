"""What indexing a dataset folder shares across sources: the report of every problem found, reading each file
once (content hash for duplicates + an image check, in a thread pool with a progress bar) and the patient checks.

Problems (unparseable names, unreadable images, duplicates, a patient under two classes) are listed with
their file and skipped; they never abort the index and are never dropped silently. The sources
(``trainer.data.sources``, with ``index_dataset``) say which files belong to a dataset and what their labels are."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from trainer.data.breakhis import IMAGE_SUFFIXES, compare_with_official
from trainer.data.images import MIN_SIDE, ImageError, load_rgb, probe, too_small_message
from trainer.data.records import LABEL_LEVELS, MAGNIFICATIONS, Record

VERIFY_MODES = ("full", "header", "none")
# Files that may sit beside images without being reported.
_QUIET_SUFFIXES = (".csv", ".txt", ".json", ".md", ".db", ".xml", ".html", ".pdf", ".zip", ".xlsx", ".svs")


@dataclass
class Problem:
    path: str
    kind: str  # unparseable_name | unreadable_image | too_small | missing_file | duplicate_file | patient_in_both_classes | ...
    detail: str


@dataclass
class IndexReport:
    root: str
    source: str
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts a user should know that are not problems
    generated: bool = False  # made by trainer.data.synthetic (BreakHis-named, not real tissue)
    label_level: str = "patient"  # "patient" or "patch" (records.LABEL_LEVELS): who a label belongs to

    def __post_init__(self) -> None:
        if self.label_level not in LABEL_LEVELS:
            raise ValueError(f"label_level must be one of {', '.join(LABEL_LEVELS)}, not {self.label_level!r}")

    # --- summaries -----------------------------------------------------------------------------------
    @property
    def patients(self) -> list[str]:
        return sorted({r.patient_id for r in self.records})

    def counts(self) -> dict:
        by_mag = Counter(r.magnification or "?" for r in self.records)
        by_label = Counter(r.label for r in self.records)
        by_mag_label = Counter((r.magnification or "?", r.label) for r in self.records)
        by_mag_subtype = Counter((r.magnification or "?", r.subtype or "?") for r in self.records)
        patients_by_label = Counter(_majority(labels) for labels in self._patient_labels().values())
        return {
            "images": len(self.records),
            "patients": len(self.patients),
            "patients_by_label": {"benign": patients_by_label.get(0, 0), "malignant": patients_by_label.get(1, 0)},
            "by_magnification": dict(sorted(by_mag.items(), key=lambda kv: _mag_key(kv[0]))),
            "by_label": {"benign": by_label.get(0, 0), "malignant": by_label.get(1, 0)},
            "by_magnification_label": {
                f"{m}|{'malignant' if y else 'benign'}": n
                for (m, y), n in sorted(by_mag_label.items(), key=lambda kv: (_mag_key(kv[0][0]), kv[0][1]))
            },
            "by_magnification_subtype": {
                f"{m}|{s}": n
                for (m, s), n in sorted(by_mag_subtype.items(), key=lambda kv: (_mag_key(kv[0][0]), kv[0][1]))
            },
            "problems": dict(Counter(p.kind for p in self.problems)),
            "label_level": self.label_level,
        }

    def patient_class_mix(self) -> list[dict]:
        """One row per patient: benign and malignant image counts and the malignant share (per-patch data)."""
        rows = []
        for pid, c in sorted(self._patient_labels().items()):
            n = c.get(0, 0) + c.get(1, 0)
            rows.append({"patient_id": pid, "benign": c.get(0, 0), "malignant": c.get(1, 0), "images": n})
        return rows

    def _patient_labels(self) -> dict[str, Counter]:
        out: dict[str, Counter] = defaultdict(Counter)
        for r in self.records:
            out[r.patient_id][r.label] += 1
        return out

    @property
    def is_breakhis(self) -> bool:
        return bool(self.records) and not self.generated and all(r.dataset == "breakhis" for r in self.records)

    def official_comparison(self) -> list[str] | None:
        """Differences from the official BreakHis counts ([] = matches), or None for other datasets."""
        return compare_with_official(self.records) if self.is_breakhis else None

    def to_json(self) -> dict:
        out = {
            "root": self.root,
            "source": self.source,
            "generated": self.generated,  # trainer.data.provenance reads it back from a run's data report
            "counts": self.counts(),
            "notes": list(self.notes),
            "problems": [asdict(p) for p in self.problems],
        }
        diff = self.official_comparison()
        if diff is not None:
            out["official_comparison"] = {"matches": not diff, "differences": diff}
        return out

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path


def _majority(c: Counter) -> int:
    return c.most_common(1)[0][0]


def _mag_key(mag: str) -> int:
    return MAGNIFICATIONS.index(mag) if mag in MAGNIFICATIONS else 99


def iter_image_files(root: Path):
    """Every visible file below ``root`` (sorted, so reports and records are in a stable order)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def triage(path: Path, report: IndexReport) -> bool:
    """True for an image file; other files are reported (unless they are the usual side files) and skipped."""
    if is_image_name(path):
        return True
    if path.suffix.lower() not in _QUIET_SUFFIXES:
        report.problems.append(
            Problem(str(path), "not_an_image_file", f"unexpected file type {path.suffix or '(none)'!r}")
        )
    return False


def _check_file(path: str, verify: str) -> tuple[str | None, str | None, str | None]:
    """Read a file once: its content hash (for duplicates) and, unless ``verify == 'none'``, an image check.
    Returns ``(digest, error, problem kind)``; a decodable image under ``MIN_SIDE`` is ``too_small``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        # A file a manifest lists but the copy lacks is "missing_file", so the report names exactly what is missing.
        return None, "file not found", "missing_file"
    except OSError as exc:
        return None, f"cannot read file ({exc.strerror or exc})", "unreadable_image"
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        if not data:
            raise ImageError(path, "empty file (0 bytes)")
        size = None
        if verify == "full":
            size = load_rgb(data, name=path).size
        elif verify == "header":
            size = probe(data, name=path)
    except ImageError as exc:
        return digest, exc.reason, "unreadable_image"
    if size is not None and min(size) < MIN_SIDE:
        return digest, too_small_message(size), "too_small"
    return digest, None, None


def _verify_mode(verify: bool | str) -> str:
    mode = {True: "full", False: "none"}.get(verify, verify) if isinstance(verify, bool) else str(verify)
    if mode not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)} (or True/False), not {verify!r}")
    return mode


def finish(
    report: IndexReport,
    candidates: Sequence[Record],
    *,
    verify: bool | str = True,
    workers: int | None = None,
    progress: bool = False,
) -> IndexReport:
    """Check every candidate file (in a thread pool: Pillow and hashlib release the GIL), drop and report
    unreadable files and duplicates, then report patients under two classes or two subtypes."""
    mode = _verify_mode(verify)
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    bar = tqdm(
        total=len(candidates),
        desc=f"indexing {Path(report.root).name or report.root}",
        unit="img",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = []
        for res in pool.map(lambda r: _check_file(r.path, mode), candidates):
            results.append(res)
            bar.update()
    bar.close()
    seen: dict[str, str] = {}
    names: dict[str, str] = {}
    for rec, (digest, error, kind) in zip(candidates, results, strict=True):
        if error is not None:
            report.problems.append(Problem(rec.path, kind, error))
            continue
        if digest in seen:
            report.problems.append(Problem(rec.path, "duplicate_file", f"same content as {seen[digest]}"))
            continue
        if rec.dataset == "breakhis" and rec.image_id.lower() in names:
            # BreakHis file names are unique; a second copy with other content is a stray (e.g. re-saved) file.
            report.problems.append(
                Problem(
                    rec.path,
                    "duplicate_name",
                    f"same BreakHis file name as {names[rec.image_id.lower()]} (different content)",
                )
            )
            continue
        seen[digest] = rec.path
        if rec.dataset == "breakhis":
            names[rec.image_id.lower()] = rec.path
        report.records.append(rec)
    report.problems.extend(patient_problems(report.records, report.label_level))
    return report


def patient_problems(records: Iterable[Record], label_level: str = "patient") -> list[Problem]:
    """Patients under two classes or two subtypes. With per-patch labels (``label_level == "patch"``) a patient
    holding both classes is how the data is, not a problem."""
    labels: dict[str, set[int]] = defaultdict(set)
    subtypes: dict[str, set[str]] = defaultdict(set)
    for r in records:
        labels[r.patient_id].add(r.label)
        if r.subtype:
            subtypes[r.patient_id].add(r.subtype)
    out = []
    for pid in sorted(labels):
        if len(labels[pid]) > 1 and label_level == "patient":
            out.append(
                Problem(
                    pid,
                    "patient_in_both_classes",
                    f"patient {pid} has benign and malignant images (kept; folds use the patient's majority label)",
                )
            )
        elif len(subtypes[pid]) > 1:
            out.append(
                Problem(
                    pid,
                    "patient_in_two_subtypes",
                    f"patient {pid} appears under subtypes "
                    f"{', '.join(sorted(subtypes[pid]))} (kept; one patient for the folds)",
                )
            )
    return out

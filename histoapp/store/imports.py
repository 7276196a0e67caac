"""Import a folder or a BreakHis root into the queue, through the trainer's data sources (the same parsing,
problem report and image checks as training). A folder no source recognises is imported unlabelled."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from histoapp.store.errors import StoreError
from trainer.data.images import ImageError, probe
from trainer.data.index import is_image_name, iter_image_files
from trainer.data.sources import index_dataset

BATCH = 500  # images per write transaction: one fsync per batch, and other writers get turns in between


@dataclass
class ImportResult:
    root: str
    source: str
    added: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"Imported {self.added} new image(s) from {self.root} (source: {self.source}); "
            f"{self.duplicates} already in the database (same content) were not queued again."
        )
        if self.problems:
            text += (
                f" {len(self.problems)} file(s) skipped: "
                + "; ".join(self.problems[:5])
                + (" ..." if len(self.problems) > 5 else "")
            )
        return text


def check_allowed(root: str | Path, allowed_roots) -> Path:
    """``root`` resolved, if it lies under one of ``allowed_roots`` (None: no restriction)."""
    text = str(root or "").strip()
    if not text:
        raise StoreError("enter a folder to import")
    path = Path(text).expanduser().resolve()
    if allowed_roots is not None:
        roots = [Path(r).expanduser().resolve() for r in allowed_roots]
        if not any(path == r or path.is_relative_to(r) for r in roots):
            raise StoreError(
                f"{path} is outside the folders this app may read ({', '.join(map(str, roots)) or 'none'}); "
                "put the data there or add its folder to HISTOAPP_DATA_ROOTS"
            )
    if not path.is_dir():
        raise StoreError(f"folder not found: {path}")
    return path


def _unlabelled(root: Path, result: ImportResult) -> list[dict]:
    items = []
    for path in iter_image_files(root):
        if not is_image_name(path):
            continue
        try:
            probe(path)
        except ImageError as exc:
            result.problems.append(str(exc))
            continue
        items.append(dict(path=path, dataset=root.name or "folder"))
    return items


def import_folder(store, root, *, allowed_roots=None, source: str = "auto", actor: str = "system") -> ImportResult:
    root = check_allowed(root, allowed_roots)
    try:
        report = index_dataset(root, source, verify="header")
    except ValueError as exc:
        if source != "auto":
            raise StoreError(str(exc)) from None
        result = ImportResult(
            str(root), "unlabelled folder", notes=["no labels recognised: images queued without a source label"]
        )
        items = _unlabelled(root, result)
    else:
        result = ImportResult(str(root), report.source, notes=list(report.notes))
        # Patient warnings keep their images: they are notes, not skipped files.
        result.notes += [p.detail for p in report.problems if p.kind.startswith("patient_")]
        result.problems = [
            f"{p.path}: {p.detail}"
            for p in report.problems
            if p.kind != "duplicate_file" and not p.kind.startswith("patient_")
        ]
        result.duplicates += sum(p.kind == "duplicate_file" for p in report.problems)
        items = [
            dict(
                path=r.path,
                dataset=r.dataset,
                magnification=r.magnification,
                patient_id=r.patient_id,
                label=r.label,
                subtype=r.subtype,
            )
            for r in report.records
        ]
    if not items and not result.problems:
        raise StoreError(f"{root}: no images found")
    for start in range(0, len(items), BATCH):
        for _, added in store.add_images(items[start : start + BATCH], verify=False, actor=actor):
            result.added += added
            result.duplicates += not added
    return result

"""A folder of class folders (``<benign|malignant|subtype>/[...]/<image>``), and its writer ``export_folder``
(the annotation store's export), so an export and a re-index round-trip."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from trainer.data.index import IndexReport, Problem, finish, iter_image_files, triage
from trainer.data.records import LABELS, Record, normalise_magnification
from trainer.data.sources.common import (
    NO_PATIENT_NOTE,
    Source,
    breakhis_info,
    class_of_folder,
    top_class_folders,
)

_MAG_FOLDER = re.compile(r"^(40|100|200|400)x?$", re.IGNORECASE)


def index_folder(root: str | Path, *, verify=True, workers=None, progress=False) -> IndexReport:
    """``root/<class>/[...]/<image>`` with ``<class>`` benign/malignant or a subtype name/code (any case).
    Below it, a subtype-name folder (e.g. BreakHis's ``benign/SOB/adenosis/...``) and a magnification folder
    (``40X``/``40x``/``40``) are used when present; other folders are ignored. BreakHis-named files give the
    patient id, and the magnification and subtype when no folder says otherwise; the label is the folder's."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    report = IndexReport(str(root), "folder")
    candidates, no_patient = [], 0
    for path in iter_image_files(root):
        if not triage(path, report):
            continue
        parts = path.relative_to(root).parts
        if len(parts) == 1:
            report.problems.append(
                Problem(str(path), "no_class_folder", "image directly in the dataset folder, not in a class folder")
            )
            continue
        cls = class_of_folder(parts[0])
        if cls is None:
            report.problems.append(
                Problem(
                    str(path),
                    "unknown_class_folder",
                    f"{parts[0]!r} is not a class folder (benign/malignant or a subtype name/code)",
                )
            )
            continue
        label, subtype = cls
        mag = None
        try:
            for part in parts[1:-1]:
                sub = class_of_folder(part, codes=False)
                if sub is not None and sub[1] is not None:
                    if sub[0] != label or (subtype and sub[1] != subtype):
                        raise ValueError(f"folder {part!r} contradicts class folder {parts[0]!r}")
                    subtype = sub[1]
                elif _MAG_FOLDER.match(part):
                    mag = normalise_magnification(part)
        except ValueError as exc:
            report.problems.append(Problem(str(path), "label_conflict", str(exc)))
            continue
        info = breakhis_info(path)
        if info is not None:
            pid, mag = info.patient_id, mag or info.magnification
            if subtype is None and info.label == label:
                subtype = info.subtype
        else:
            pid, no_patient = path.relative_to(root).with_suffix("").as_posix(), no_patient + 1
        candidates.append(Record(str(path), pid, label, subtype, mag, "breakhis" if info else "folder"))
    if not candidates and not report.problems:
        raise ValueError(f"{root}: no images in class folders (benign/malignant or the 8 subtypes)")
    if no_patient:
        report.notes.append(NO_PATIENT_NOTE.format(n=no_patient))
    return finish(report, candidates, verify=verify, workers=workers, progress=progress)


def export_folder(
    records: Iterable[Record], dest: str | Path, *, by_magnification: bool = True, link: bool = False
) -> Path:
    """Copy (or hard-link) images into ``dest/<benign|malignant>/[<mag>/]<file>``, a folder of class folders.
    File names are kept (BreakHis names keep their patient ids); a name clash gets a numeric suffix."""
    dest = Path(dest)
    used: set[Path] = set()
    for r in records:
        folder = dest / LABELS[r.label]
        if by_magnification and r.magnification:
            folder = folder / r.magnification
        folder.mkdir(parents=True, exist_ok=True)
        src = Path(r.path)
        out, k = folder / src.name, 1
        while out in used or out.exists():
            out, k = folder / f"{src.stem}_{k}{src.suffix}", k + 1
        used.add(out)
        if link:
            try:
                os.link(src, out)
                continue
            except OSError:
                pass  # another file system: copy instead
        shutil.copy2(src, out)
    return dest


SOURCE = Source("folder", "folder of class folders", index_folder, lambda root: bool(top_class_folders(root)))

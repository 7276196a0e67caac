"""What the sources share: the registry's entry (``Source``), reading a class from a folder name or a CSV cell,
and a BreakHis name wherever it turns up (every source gives a BreakHis-named file its slide id)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainer.data.breakhis import parse_name
from trainer.data.index import IndexReport
from trainer.data.records import LABELS, SUBTYPE_LABEL, SUBTYPE_NAMES, SUBTYPES


@dataclass(frozen=True)
class Source:
    """One entry of ``trainer.data.sources.SOURCES``: the ``data.source`` name, the Train form's words for it,
    its indexer (``index(root, *, verify, workers, progress) -> IndexReport``) and whether a folder holds it
    (``source: auto`` asks each source in the registry's order)."""

    name: str
    title: str
    index: Callable[..., IndexReport]
    detect: Callable[[Path], bool]


NO_PATIENT_NOTE = (
    "{n} image(s) carry no patient id; each is treated as its own patient, so folds are "
    "image-level for them (optimistic if a patient gave several images). Give patient ids in a "
    "CSV manifest (patient_id column) to group them."
)

_SUBTYPE_BY_NAME = {name: code for code, name in SUBTYPE_NAMES.items()}


def key(name: str) -> str:
    """Folder-name key: case-, space-, dash- and underscore-insensitive."""
    return re.sub(r"[\s_\-]+", "", name).lower()


def class_of_folder(name: str, *, codes: bool = True) -> tuple[int, str | None] | None:
    """``(label, subtype)`` for a class folder name (benign/malignant, a subtype name or code), else None."""
    k = key(name)
    if k in ("benign", "malignant"):
        return LABELS.index(k), None
    for sub_name, code in _SUBTYPE_BY_NAME.items():
        if k == key(sub_name):
            return SUBTYPE_LABEL[code], code
    if codes and name.upper() in SUBTYPES:
        return SUBTYPE_LABEL[name.upper()], name.upper()
    return None


def top_class_folders(root: Path) -> dict[str, tuple[int, str | None]]:
    """``root``'s sub-folders named for a class, with the class they name."""
    return {p.name: c for p in root.iterdir() if p.is_dir() and (c := class_of_folder(p.name)) is not None}


def parse_label(value) -> int:
    text = str(value if value is not None else "").strip().lower()
    if text in ("0", "benign"):
        return 0
    if text in ("1", "malignant"):
        return 1
    raise ValueError(f"invalid label {value!r} (expected benign/malignant or 0/1)" if text else "missing label")


def parse_subtype(value) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    if text.upper() in SUBTYPES:
        return text.upper()
    code = _SUBTYPE_BY_NAME.get(re.sub(r"[\s\-]+", "_", text.lower()))
    if code is None:
        raise ValueError(f"unknown subtype {value!r} (expected one of {', '.join(SUBTYPES)} or their names)")
    return code


def breakhis_info(path: Path):
    try:
        return parse_name(path.name)
    except ValueError:
        return None

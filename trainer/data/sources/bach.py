"""BACH (ICIAR 2018) microscopy images in their class folders. BACH publishes no patient ids, so each image is
its own patient (folds are image-level; a CSV manifest with patient ids groups them)."""

from __future__ import annotations

from pathlib import Path

from trainer.data.index import IndexReport, Problem, finish, is_image_name, iter_image_files, triage
from trainer.data.records import Record
from trainer.data.sources.common import Source, key

# BACH microscopy classes -> binary label (Normal + Benign -> benign; in situ + invasive carcinoma -> malignant).
BACH_CLASSES = {"normal": 0, "benign": 0, "insitu": 1, "invasive": 1}
# BACH microscopy images were all acquired at 200x (Aresta et al., Med. Image Anal. 2019).
BACH_MAGNIFICATION = "200X"


def find_bach_folder(root: Path, depth: int = 3) -> Path | None:
    """The folder holding BACH's class folders (Normal, Benign, InSitu, Invasive): ``root`` or below it."""
    frontier = [root]
    for _ in range(depth + 1):
        nxt = []
        for d in frontier:
            try:
                subs = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
            keys = {key(p.name) for p in subs}
            if {"insitu", "invasive"} & keys and {"normal", "benign"} & keys:
                return d
            nxt += subs
        frontier = nxt
    return None


def index_bach(root: str | Path, *, verify=True, workers=None, progress=False) -> IndexReport:
    """BACH microscopy (``.../Photos/{Normal,Benign,InSitu,Invasive}/*.tif``). BACH publishes no patient ids, so
    the patient id is ``bach-<file stem>`` (each image its own group; see the module docstring)."""
    root = Path(root)
    folder = find_bach_folder(root) if root.is_dir() else None
    if folder is None:
        raise FileNotFoundError(
            f"{root}: no BACH class folders (Normal, Benign, InSitu, Invasive) found in it or below it"
        )
    report = IndexReport(str(root), "bach")
    candidates = []
    for cls_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        label = BACH_CLASSES.get(key(cls_dir.name))
        for path in iter_image_files(cls_dir):
            if not triage(path, report):
                continue
            if label is None:
                report.problems.append(
                    Problem(str(path), "unknown_class_folder", f"{cls_dir.name!r} is not a BACH class")
                )
                continue
            candidates.append(Record(str(path), f"bach-{path.stem}", label, None, BACH_MAGNIFICATION, "bach"))
    for path in folder.iterdir():
        if path.is_file() and is_image_name(path):
            report.problems.append(Problem(str(path), "no_class_folder", "image outside the class folders"))
    report.notes.append(
        "BACH has no patient ids: patient id = bach-<file stem>, so folds are image-level. "
        "Labels: Normal, Benign -> benign; InSitu, Invasive -> malignant. Subtype: none "
        "(BreakHis subtypes do not apply). Magnification: 200X."
    )
    return finish(report, candidates, verify=verify, workers=workers, progress=progress)


SOURCE = Source("bach", "BACH", index_bach, lambda root: find_bach_folder(root) is not None)

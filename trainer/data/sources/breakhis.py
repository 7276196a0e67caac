"""BreakHis (Spanhol et al. 2016): the official root, any folder below it, or a flat folder of BreakHis-named
files (``SOB_<B|M>_<SUBTYPE>-<YY>-<SLIDE>-<MAG>-<SEQ>.png``; the name gives class, subtype, slide and
magnification, ``trainer.data.breakhis``). Generated data (``trainer data synth``) is BreakHis-named too."""

from __future__ import annotations

from pathlib import Path

from trainer.data.breakhis import parse_name
from trainer.data.index import IndexReport, Problem, finish, is_image_name, iter_image_files, triage
from trainer.data.records import Record
from trainer.data.sources.common import Source, breakhis_info, top_class_folders


def index_breakhis(
    root: str | Path, *, verify: bool | str = True, workers: int | None = None, progress: bool = False
) -> IndexReport:
    """Index the official BreakHis root, any folder below it, or a flat folder of BreakHis-named files."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    report = IndexReport(str(root), "breakhis")
    candidates = []
    for path in iter_image_files(root):
        if not triage(path, report):
            continue
        try:
            parsed = parse_name(path.name)
        except ValueError as exc:
            report.problems.append(Problem(str(path), "unparseable_name", str(exc)))
            continue
        candidates.append(
            Record(str(path), parsed.patient_id, parsed.label, parsed.subtype, parsed.magnification, "breakhis")
        )
    if not candidates:
        raise ValueError(
            f"{root}: no BreakHis images found (expected files named "
            "SOB_<B|M>_<SUBTYPE>-<YY>-<SLIDE>-<MAG>-<SEQ>.png below it)"
        )
    return finish(report, candidates, verify=verify, workers=workers, progress=progress)


def holds_breakhis(root: Path) -> bool:
    """BreakHis-named files below ``root``, none of them in a class folder that relabels it (that is an
    annotation export: ``folder``)."""
    top = top_class_folders(root)
    breakhis = relabelled = 0
    for path in iter_image_files(root):
        info = breakhis_info(path) if is_image_name(path) else None
        if info is None:
            continue
        breakhis += 1
        first = path.relative_to(root).parts[0]
        if first in top and top[first][0] != info.label:
            relabelled += 1
    return bool(breakhis) and not relabelled


SOURCE = Source("breakhis", "BreakHis folder", index_breakhis, holds_breakhis)

"""Dataset sources, one module each: ``breakhis``, ``bach``, ``idc`` (per-patch labels), ``folder`` (a folder of
class folders) and ``manifest`` (a CSV manifest, ``data.source: csv``). ``SOURCES`` is their one registry: the
names ``data.source`` takes, the Train form's choices and ``source: auto``'s detection order all come from it.
A new source is one module with a ``SOURCE`` entry, added here. ``trainer.data.index`` keeps what every source
shares (reading each file once, the patient checks, the report).

Patient ids. BreakHis-named files always get their slide id (``<YY>-<SLIDE>``), in every source. BACH and
other files carry no patient information, so each image is its own patient: folds are then image-level, which
is optimistic if one patient gave several images. A CSV manifest with a ``patient_id`` column fixes that."""

from __future__ import annotations

from pathlib import Path

from trainer.data.index import IndexReport
from trainer.data.sources import bach, breakhis, folder, idc, manifest
from trainer.data.sources.bach import BACH_CLASSES, BACH_MAGNIFICATION, find_bach_folder, index_bach
from trainer.data.sources.breakhis import index_breakhis
from trainer.data.sources.common import Source, class_of_folder, parse_label, parse_subtype
from trainer.data.sources.folder import export_folder, index_folder
from trainer.data.sources.idc import IDC_MAGNIFICATION, index_idc, is_idc_layout, parse_idc_name
from trainer.data.sources.manifest import MANIFEST_COLUMNS, MANIFEST_NAME, find_manifest, index_csv, write_manifest

__all__ = [
    "SOURCES",
    "DATA_SOURCES",
    "SYNTHETIC",
    "AUTO",
    "Source",
    "index_dataset",
    "detect_source",
    "index_breakhis",
    "index_bach",
    "index_idc",
    "index_folder",
    "index_csv",
    "BACH_CLASSES",
    "BACH_MAGNIFICATION",
    "IDC_MAGNIFICATION",
    "MANIFEST_NAME",
    "MANIFEST_COLUMNS",
    "class_of_folder",
    "parse_label",
    "parse_subtype",
    "parse_idc_name",
    "is_idc_layout",
    "find_bach_folder",
    "find_manifest",
    "write_manifest",
    "export_folder",
]

# In detection order (``detect_source``): IDC first (IDC copies often carry a manifest), then a manifest, BACH's
# class folders, BreakHis-named files, class folders.
SOURCES: dict[str, Source] = {
    s.name: s for s in (idc.SOURCE, manifest.SOURCE, bach.SOURCE, breakhis.SOURCE, folder.SOURCE)
}
# What ``data.source`` may say: a source, ``synthetic`` (BreakHis-named data generated into data.root, indexed as
# breakhis and marked generated) or ``auto`` (detected per root).
SYNTHETIC, AUTO = "synthetic", "auto"
DATA_SOURCES = (*SOURCES, SYNTHETIC, AUTO)


def detect_source(root: str | Path) -> str:
    """Which source ``root`` holds: the first in ``SOURCES`` whose ``detect`` says yes (a ``manifest.csv`` or a
    .csv file -> csv; BreakHis-named files in class folders that relabel them, an annotation export -> folder)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if root.is_file() and find_manifest(root) is None:
        raise ValueError(f"{root}: a dataset is a folder or a CSV manifest, not a {root.suffix or 'plain'} file")
    for source in SOURCES.values():
        if source.detect(root):
            return source.name
    raise ValueError(
        f"{root}: no dataset recognised. Expected BreakHis-named images (SOB_<B|M>_<SUBTYPE>-<YY>-<SLIDE>-<MAG>-<SEQ>.png), "
        "BACH class folders (Normal/Benign/InSitu/Invasive), class folders (benign/malignant or the 8 subtypes), "
        f"IDC patient folders (<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png), or a {MANIFEST_NAME}"
    )


def index_dataset(
    root: str | Path,
    source: str = AUTO,
    *,
    verify: bool | str = True,
    workers: int | None = None,
    progress: bool = False,
) -> IndexReport:
    """Index ``root`` with the named source (``auto`` picks by what is there; ``synthetic``: BreakHis-named
    generated data, the one place that rewrites it to breakhis).

    ``verify``: ``"full"``/``True`` decodes every image, ``"header"`` checks headers (and PNG checksums)
    without decoding, ``"none"``/``False`` only reads the files (for duplicates). ``progress``: a tqdm bar
    on stderr."""
    if source not in SOURCES and source not in (SYNTHETIC, AUTO):
        raise ValueError(f"unknown data source {source!r}; expected one of {', '.join((*SOURCES, SYNTHETIC, AUTO))}")
    from trainer.data.synthetic import is_generated  # numpy: not at import, so trainer.config stays light

    generated = source == SYNTHETIC or is_generated(root)
    if source == SYNTHETIC:
        source = breakhis.SOURCE.name
    if source == AUTO:
        source = detect_source(root)
    report = SOURCES[source].index(root, verify=verify, workers=workers, progress=progress)
    report.generated = generated
    return report

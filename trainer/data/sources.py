"""Dataset sources besides BreakHis: BACH (ICIAR 2018), IDC (per-patch labels), a folder of class folders, and a
CSV manifest; plus
``detect_source`` for ``source="auto"`` and writers for the two bring-your-own formats (``write_manifest``,
``export_folder``), so an export and a re-index round-trip.

Patient ids. BreakHis-named files always get their slide id (``<YY>-<SLIDE>``), in every source. BACH and
other files carry no patient information, so each image is its own patient: folds are then image-level, which
is optimistic if one patient gave several images. A CSV manifest with a ``patient_id`` column fixes that."""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from trainer.data.breakhis import parse_name
from trainer.data.index import IndexReport, Problem, finish, is_image_name, iter_image_files, triage
from trainer.data.records import LABELS, SUBTYPE_LABEL, SUBTYPE_NAMES, SUBTYPES, Record, normalise_magnification

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("path", "label", "patient_id", "subtype", "magnification", "dataset")
# BACH microscopy classes -> binary label (Normal + Benign -> benign; in situ + invasive carcinoma -> malignant).
BACH_CLASSES = {"normal": 0, "benign": 0, "insitu": 1, "invasive": 1}
# BACH microscopy images were all acquired at 200x (Aresta et al., Med. Image Anal. 2019).
BACH_MAGNIFICATION = "200X"
_NO_PATIENT_NOTE = (
    "{n} image(s) carry no patient id; each is treated as its own patient, so folds are "
    "image-level for them (optimistic if a patient gave several images). Give patient ids in a "
    "CSV manifest (patient_id column) to group them."
)
_SUBTYPE_BY_NAME = {name: code for code, name in SUBTYPE_NAMES.items()}
# IDC (Janowczyk & Madabhushi 2016; Kaggle "Breast Histopathology Images"): <patient>/<0|1>/<name>.png, the name
# giving the patient, where on the slide the 50x50 patch was cut, and its class (1 = IDC in the patch).
_IDC_NAME = re.compile(r"^(?P<patient>\d+)_idx5_x(?P<x>\d+)_y(?P<y>\d+)_class(?P<cls>[01])\.png$", re.IGNORECASE)
# The IDC slides were scanned at 40x (Cruz-Roa et al. 2014).
IDC_MAGNIFICATION = "40X"
_MAG_FOLDER = re.compile(r"^(40|100|200|400)x?$", re.IGNORECASE)


def _key(name: str) -> str:
    """Folder-name key: case-, space-, dash- and underscore-insensitive."""
    return re.sub(r"[\s_\-]+", "", name).lower()


def class_of_folder(name: str, *, codes: bool = True) -> tuple[int, str | None] | None:
    """``(label, subtype)`` for a class folder name (benign/malignant, a subtype name or code), else None."""
    k = _key(name)
    if k in ("benign", "malignant"):
        return LABELS.index(k), None
    for sub_name, code in _SUBTYPE_BY_NAME.items():
        if k == _key(sub_name):
            return SUBTYPE_LABEL[code], code
    if codes and name.upper() in SUBTYPES:
        return SUBTYPE_LABEL[name.upper()], name.upper()
    return None


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


def _breakhis_info(path: Path):
    try:
        return parse_name(path.name)
    except ValueError:
        return None


# --- detection -----------------------------------------------------------------------------------------


def find_manifest(root: Path) -> Path | None:
    if root.is_file():
        return root if root.suffix.lower() == ".csv" else None
    for p in sorted(root.glob("*")):
        if p.is_file() and p.name.lower() == MANIFEST_NAME:
            return p
    return None


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
            keys = {_key(p.name) for p in subs}
            if {"insitu", "invasive"} & keys and {"normal", "benign"} & keys:
                return d
            nxt += subs
        frontier = nxt
    return None


def _top_class_folders(root: Path) -> dict[str, tuple[int, str | None]]:
    return {p.name: c for p in root.iterdir() if p.is_dir() and (c := class_of_folder(p.name)) is not None}


def is_idc_layout(root: Path, probe_patients: int = 3) -> bool:
    """``root/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``: checks the first few patient folders."""
    if not root.is_dir():
        return False
    patients = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())[:probe_patients]
    if not patients:
        return False
    for patient in patients:
        names = [f.name for c in ("0", "1") if (patient / c).is_dir() for f in (patient / c).iterdir()][:20]
        if not names or not all(_IDC_NAME.match(n) for n in names if is_image_name(Path(n))):
            return False
    return True


def detect_source(root: str | Path) -> str:
    """Which source ``root`` holds: the IDC layout -> idc (checked first: IDC copies often carry a manifest);
    a ``manifest.csv`` (or a .csv file) -> csv; BACH class folders -> bach; BreakHis-named files -> breakhis,
    unless they sit in class folders that relabel them (an annotation export) -> folder; class folders ->
    folder."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if is_idc_layout(root):
        return "idc"
    if find_manifest(root):
        return "csv"
    if root.is_file():
        raise ValueError(f"{root}: a dataset is a folder or a CSV manifest, not a {root.suffix or 'plain'} file")
    if find_bach_folder(root):
        return "bach"
    top = _top_class_folders(root)
    breakhis = relabelled = 0
    for path in iter_image_files(root):
        info = _breakhis_info(path) if is_image_name(path) else None
        if info is None:
            continue
        breakhis += 1
        first = path.relative_to(root).parts[0]
        if first in top and top[first][0] != info.label:
            relabelled += 1
    if breakhis and not relabelled:
        return "breakhis"
    if top:
        return "folder"
    raise ValueError(
        f"{root}: no dataset recognised. Expected BreakHis-named images (SOB_<B|M>_<SUBTYPE>-<YY>-<SLIDE>-<MAG>-<SEQ>.png), "
        "BACH class folders (Normal/Benign/InSitu/Invasive), class folders (benign/malignant or the 8 subtypes), "
        f"IDC patient folders (<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png), or a {MANIFEST_NAME}"
    )


# --- BACH ----------------------------------------------------------------------------------------------


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
        label = BACH_CLASSES.get(_key(cls_dir.name))
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


# --- IDC (per-patch labels) ----------------------------------------------------------------------------


def parse_idc_name(name: str) -> tuple[str, int, int, int] | None:
    """``(patient_id, x, y, label)`` from an IDC patch name, or None."""
    m = _IDC_NAME.match(Path(name).name)
    return (m["patient"], int(m["x"]), int(m["y"]), int(m["cls"])) if m else None


def index_idc(root: str | Path, *, verify=True, workers=None, progress=False) -> IndexReport:
    """IDC patches (``<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``), labelled per patch: class 1 =
    invasive ductal carcinoma in the patch (malignant), 0 = none (benign, which here means "no IDC in this
    patch", not a benign tumour). The patient id and the patch's slide coordinates come from the name. When the
    folder has a ``MANIFEST.csv`` (``path,label,patient_id``), it says which files belong to the dataset (a
    listed file the copy lacks is ``missing_file``); otherwise the patient folders are walked."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    report = IndexReport(str(root), "idc", label_level="patch")
    manifest = find_manifest(root)
    if manifest is not None:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        if rows and "path" not in {k.strip().lower() for k in rows[0]}:
            raise ValueError(f"{manifest}: no path column (an IDC manifest has path,label,patient_id)")
        listed = [(root / (r.get("path") or "").strip(), (r.get("label") or "").strip()) for r in rows]
        # Patches beside the manifest that it does not list are still part of the copy: report them (and other
        # stray files, as without a manifest; the usual side files such as SOURCE.md stay quiet).
        known = {p for p, _ in listed}
        extra = [p for p in iter_image_files(root) if p not in known and triage(p, report)]
        for p in extra:
            report.problems.append(Problem(str(p), "not_in_manifest", f"not listed in {manifest.name} (skipped)"))
    else:
        listed = [(p, "") for p in iter_image_files(root) if triage(p, report)]
    candidates = []
    for path, manifest_label in listed:
        parsed = parse_idc_name(path.name)
        if parsed is None:
            report.problems.append(
                Problem(str(path), "unparseable_name", "not an IDC patch name (<patient>_idx5_x<X>_y<Y>_class<C>.png)")
            )
            continue
        patient, x, y, label = parsed
        folder = path.parent.name
        try:
            if folder in ("0", "1") and int(folder) != label:
                raise ValueError(f"class folder {folder} contradicts class{label} in the name")
            if manifest_label and parse_label(manifest_label) != label:
                raise ValueError(f"manifest label {manifest_label!r} contradicts class{label} in the name")
        except ValueError as exc:
            report.problems.append(Problem(str(path), "label_conflict", str(exc)))
            continue
        candidates.append(Record(str(path), patient, label, None, IDC_MAGNIFICATION, "idc", x, y))
    if not candidates and not report.problems:
        raise ValueError(f"{root}: no IDC patches found")
    report.notes.append(
        "IDC: labels are per patch (malignant = invasive ductal carcinoma in the patch; benign = no IDC in the "
        "patch, not a benign tumour), so a patient holds both classes; folds group patches by patient."
    )
    return finish(report, candidates, verify=verify, workers=workers, progress=progress)


# --- folder of class folders ---------------------------------------------------------------------------


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
        info = _breakhis_info(path)
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
        report.notes.append(_NO_PATIENT_NOTE.format(n=no_patient))
    return finish(report, candidates, verify=verify, workers=workers, progress=progress)


# --- CSV manifest --------------------------------------------------------------------------------------


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
            info = _breakhis_info(path)
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
        report.notes.append(_NO_PATIENT_NOTE.format(n=no_patient))
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


# --- writers (annotation exports) ----------------------------------------------------------------------


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

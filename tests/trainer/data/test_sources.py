import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.trainer.data.conftest import IDC_EDGE_SIZES, IDC_PATIENTS, idc_name, write_idc
from trainer.data.sources import (
    detect_source,
    export_folder,
    index_dataset,
    is_idc_layout,
    parse_idc_name,
    write_manifest,
)


def _key(r):
    return (Path(r.path).name, r.patient_id, r.label, r.subtype, r.magnification)


def _png(path: Path, colour=(200, 100, 150)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), colour).save(path)
    return path


def test_bach_layout_maps_four_classes_to_binary(tmp_path):
    photos = tmp_path / "ICIAR2018_BACH_Challenge" / "Photos"
    for i, (cls, prefix) in enumerate([("Normal", "n"), ("Benign", "b"), ("InSitu", "is"), ("Invasive", "iv")]):
        for k in range(2):
            _png(photos / cls / f"{prefix}{k:03d}.tif", (20 * i + k, 50, 90))
    (photos / "microscopy_ground_truth.csv").write_text("n000.tif,Normal\n")
    assert detect_source(tmp_path) == "bach"
    report = index_dataset(tmp_path)
    assert report.source == "bach" and not report.problems
    labels = {Path(r.path).stem: r.label for r in report.records}
    assert labels == {"n000": 0, "n001": 0, "b000": 0, "b001": 0, "is000": 1, "is001": 1, "iv000": 1, "iv001": 1}
    assert {r.patient_id for r in report.records} == {f"bach-{s}" for s in labels}  # one patient per image
    assert {r.magnification for r in report.records} == {"200X"}
    assert any("no patient ids" in n for n in report.notes)


def test_folder_of_class_folders_with_subtypes_and_magnifications(tmp_path):
    _png(tmp_path / "Benign" / "40x" / "a.png", (1, 2, 3))
    _png(tmp_path / "MALIGNANT" / "b.png", (4, 5, 6))
    _png(tmp_path / "ductal carcinoma" / "400" / "c.png", (7, 8, 9))
    _png(tmp_path / "PT" / "d.png", (10, 11, 12))
    _png(tmp_path / "malignant" / "adenosis" / "e.png", (13, 14, 15))  # contradicts its class folder
    _png(tmp_path / "misc" / "f.png", (16, 17, 18))
    _png(tmp_path / "g.png", (19, 20, 21))
    assert detect_source(tmp_path) == "folder"
    report = index_dataset(tmp_path)
    got = {Path(r.path).name: (r.label, r.subtype, r.magnification, r.patient_id) for r in report.records}
    assert got == {
        "a.png": (0, None, "40X", "Benign/40x/a"),
        "b.png": (1, None, None, "MALIGNANT/b"),
        "c.png": (1, "DC", "400X", "ductal carcinoma/400/c"),
        "d.png": (0, "PT", None, "PT/d"),
    }
    kinds = {Path(p.path).name: p.kind for p in report.problems}
    assert kinds == {"e.png": "label_conflict", "f.png": "unknown_class_folder", "g.png": "no_class_folder"}
    assert any("own patient" in n for n in report.notes)


def test_class_folder_export_round_trips_and_relabels_win(tmp_path, tiny_records):
    export_folder(tiny_records, tmp_path / "export")
    back = index_dataset(tmp_path / "export", source="folder")
    assert sorted(map(_key, back.records)) == sorted(map(_key, tiny_records))
    # A consensus label that contradicts the file name: the class folder wins, and auto sees an export.
    moved = next(r for r in tiny_records if r.label == 0)
    src = tmp_path / "export" / "benign" / moved.magnification / Path(moved.path).name
    dst = tmp_path / "export" / "malignant" / moved.magnification / src.name
    shutil.move(src, dst)
    assert detect_source(tmp_path / "export") == "folder"
    rec = next(r for r in index_dataset(tmp_path / "export").records if r.path == str(dst))
    assert (rec.label, rec.subtype, rec.patient_id) == (1, None, moved.patient_id)


def test_csv_manifest_round_trips(tmp_path, tiny_records):
    manifest = write_manifest(tiny_records, tmp_path / "labels" / "manifest.csv")
    assert manifest.read_text().splitlines()[0] == "path,label,patient_id,subtype,magnification,dataset"
    assert detect_source(tmp_path / "labels") == "csv"
    back = index_dataset(tmp_path / "labels")
    assert back.source == "csv" and not back.problems
    assert back.records == tiny_records
    assert index_dataset(manifest).records == tiny_records  # the CSV file itself works too


def test_csv_bad_rows_are_reported_with_row_numbers(tmp_path, tiny_records):
    img = Path(tiny_records[0].path)
    shutil.copy(img, tmp_path / "x.png")
    shutil.copy(tiny_records[1].path, tmp_path / "y.png")
    (tmp_path / "list.csv").write_text(
        "Path,Label,patient_id\n"
        "x.png,malignant,p1\n"  # row 1 ok
        "y.png,,p2\n"  # row 2 missing label
        "y.png,maybe,p2\n"  # row 3 invalid label
        ",1,p3\n"  # row 4 no path
        "missing.png,0,p4\n"  # row 5 file not there
        "y.png,0,\n"  # row 6 ok, no patient id -> from the path
    )
    report = index_dataset(tmp_path / "list.csv")
    assert [(r.path, r.label, r.patient_id) for r in report.records] == [
        (str(tmp_path / "x.png"), 1, "p1"),
        (str(tmp_path / "y.png"), 0, "y"),
    ]
    details = [p.detail for p in report.problems]
    assert any("row 2" in d and "missing label" in d for d in details)
    assert any("row 3" in d and "'maybe'" in d for d in details)
    assert any("row 4" in d and "empty path" in d for d in details)
    assert any(p.path == str(tmp_path / "missing.png") and "not found" in p.detail for p in report.problems)


def test_csv_without_required_columns_is_one_clear_error(tmp_path):
    (tmp_path / "manifest.csv").write_text("file,class\na.png,benign\n")
    with pytest.raises(ValueError, match="missing column.*path, label"):
        index_dataset(tmp_path)


def test_official_breakhis_tree_is_breakhis_at_every_level(tiny_root):
    for sub in ("", "BreaKHis_v1", "BreaKHis_v1/histology_slides/breast", "BreaKHis_v1/histology_slides/breast/benign"):
        assert detect_source(Path(tiny_root) / sub) == "breakhis", sub


# --- IDC (per-patch labels) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,expected",
    [
        ("8863_idx5_x1001_y2051_class1.png", ("8863", 1001, 2051, 1)),
        ("12626_idx5_x51_y1_class0.png", ("12626", 51, 1, 0)),
        ("/data/idc/9077/1/9077_idx5_x3401_y501_class1.png", ("9077", 3401, 501, 1)),  # a path: its name counts
        ("8863_IDX5_X1_Y2_CLASS0.PNG", ("8863", 1, 2, 0)),
    ],
)
def test_idc_names_give_patient_slide_position_and_class(name, expected):
    assert parse_idc_name(name) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "8863_idx5_x1_y2_class2.png",  # only class 0 and 1
        "8863_idx4_x1_y2_class0.png",
        "8863_idx5_x1_class0.png",
        "8863_idx5_x1_y2_class0.jpg",
        "abc_idx5_x1_y2_class0.png",
        "SOB_B_A-14-22549AB-40-001.png",
    ],
)
def test_other_names_are_not_idc(bad):
    assert parse_idc_name(bad) is None


def test_idc_layout_is_detected_with_and_without_its_manifest(tmp_path):
    bare = write_idc(tmp_path / "bare", {"10253": (2, 1), "10254": (1, 2)}, edges=False)
    assert is_idc_layout(bare) and detect_source(bare) == "idc"
    listed = write_idc(tmp_path / "listed", {"10253": (2, 1), "10254": (1, 2)}, edges=False, manifest=True)
    assert (listed / "MANIFEST.csv").is_file()
    assert detect_source(listed) == "idc"  # the layout wins over the manifest beside it
    assert index_dataset(listed).source == "idc"
    # Digit-named folders of other files are not IDC.
    _png(tmp_path / "other" / "123" / "0" / "a.png")
    assert not is_idc_layout(tmp_path / "other")


def test_idc_records_keep_patient_position_magnification_and_patch_labels(idc_root):
    report = index_dataset(idc_root)
    assert report.source == "idc" and report.label_level == "patch"
    assert len(report.records) == sum(b + m for b, m in IDC_PATIENTS.values())
    assert {r.dataset for r in report.records} == {"idc"}
    assert {r.magnification for r in report.records} == {"40X"}
    assert {r.subtype for r in report.records} == {None}
    for r in report.records:
        assert (r.patient_id, r.x, r.y, r.label) == parse_idc_name(r.path)
        assert Path(r.path).parent.name == str(r.label) and Path(r.path).parent.parent.name == r.patient_id
    mix = {row["patient_id"]: (row["benign"], row["malignant"]) for row in report.patient_class_mix()}
    assert mix == IDC_PATIENTS
    # Every patient holds both classes: with per-patch labels that is the data, not a problem.
    assert not [p for p in report.problems if p.kind == "patient_in_both_classes"]
    assert any("per patch" in n for n in report.notes)


def test_idc_edge_tiles_are_too_small_skipped_and_never_fatal(idc_root):
    report = index_dataset(idc_root)
    small = [p for p in report.problems if p.kind == "too_small"]
    assert [p.kind for p in report.problems] == ["too_small", "too_small"]  # nothing else is wrong
    sizes = sorted(f"({w}x{h} px" for w, h in IDC_EDGE_SIZES)
    assert sorted(next(s for s in sizes if s in p.detail) for p in small) == sizes
    assert all("at least 16 px" in p.detail for p in small)
    assert not {p.path for p in small} & {r.path for r in report.records}
    # The header check sees the size too; with no check at all the tiles are kept (nothing decoded).
    assert len([p for p in index_dataset(idc_root, verify="header").problems if p.kind == "too_small"]) == 2
    assert len(index_dataset(idc_root, verify="none").records) == len(report.records) + 2


def test_idc_manifest_says_which_files_belong(tmp_path):
    root = write_idc(tmp_path / "idc", {"8863": (3, 2), "8864": (2, 3)}, edges=False, manifest=True)
    listed = [line.split(",")[0] for line in (root / "MANIFEST.csv").read_text().splitlines()[1:]]
    gone = root / listed[1]
    gone.unlink()  # listed, but the copy lacks it
    extra = root / "8864" / "1" / idc_name("8864", 901, 901, 1)  # in the copy, not listed
    shutil.copy(root / listed[-1], extra)
    extra.write_bytes(extra.read_bytes() + b"\0")  # different content: not a duplicate
    # Name, folder and manifest label that disagree.
    wrong_folder = root / "8863" / "1" / idc_name("8863", 951, 951, 0)
    Image.new("RGB", (50, 50), (1, 2, 3)).save(wrong_folder)
    wrong_label = root / "8864" / "0" / idc_name("8864", 951, 951, 0)
    Image.new("RGB", (50, 50), (4, 5, 6)).save(wrong_label)
    stray = root / "8863" / "0" / "notes.docx"
    stray.write_text("x")
    (root / "SOURCE.md").write_text("where the copy came from\n")  # a usual side file: not a problem
    with open(root / "MANIFEST.csv", "a") as fh:
        fh.write(f"{wrong_folder.relative_to(root).as_posix()},benign,8863\n")
        fh.write(f"{wrong_label.relative_to(root).as_posix()},malignant,8864\n")

    report = index_dataset(root)
    assert report.source == "idc"
    kinds = {p.path: p.kind for p in report.problems}
    assert kinds == {
        str(gone): "missing_file",
        str(extra): "not_in_manifest",
        str(stray): "not_an_image_file",
        str(wrong_folder): "label_conflict",
        str(wrong_label): "label_conflict",
    }
    details = {p.path: p.detail for p in report.problems}
    assert "class folder 1 contradicts class0" in details[str(wrong_folder)]
    assert "manifest label 'malignant' contradicts class0" in details[str(wrong_label)]
    assert len(report.records) == 10 - 1
    assert {r.path for r in report.records} == {str(root / p) for p in listed} - {str(gone)}


def test_upper_case_manifest_in_a_plain_folder_is_a_csv_source(tmp_path, tiny_records):
    for r in tiny_records[:4]:
        shutil.copy(r.path, tmp_path / Path(r.path).name)
    lines = ["path,label,patient_id"] + [f"{Path(r.path).name},{r.label},p{r.label}" for r in tiny_records[:4]]
    (tmp_path / "MANIFEST.csv").write_text("\n".join(lines) + "\n")
    assert detect_source(tmp_path) == "csv"
    report = index_dataset(tmp_path)
    assert report.source == "csv" and len(report.records) == 4 and not report.problems


def test_csv_manifest_with_a_patient_in_both_classes_is_per_patch(tmp_path, tiny_records):
    benign = next(r for r in tiny_records if r.label == 0)
    malignant = next(r for r in tiny_records if r.label == 1)
    shutil.copy(benign.path, tmp_path / "a.png")  # plain names: no BreakHis subtype read from them
    shutil.copy(malignant.path, tmp_path / "b.png")
    rows = ["a.png,benign,slide-1", "b.png,malignant,slide-1"]
    (tmp_path / "manifest.csv").write_text("path,label,patient_id\n" + "\n".join(rows) + "\n")
    report = index_dataset(tmp_path)
    assert report.source == "csv" and report.label_level == "patch"
    assert not report.problems  # both classes in one patient is how per-patch data is
    assert any("per patch" in n for n in report.notes)
    # One label per patient: per-patient data, as before.
    (tmp_path / "manifest.csv").write_text("path,label,patient_id\n" + rows[0] + "\n" + rows[1].replace("-1", "-2"))
    assert index_dataset(tmp_path).label_level == "patient"


def test_a_source_is_one_registry_entry(tmp_path, monkeypatch):
    """index_dataset and source auto read SOURCES: an entry added there is indexed and detected, in the
    registry's order, with nothing else to change; a name outside it is refused."""
    from trainer.data import sources
    from trainer.data.index import IndexReport

    def index_odd(root, **kw):
        return IndexReport(str(root), "odd")

    odd = sources.Source("odd", "odd data", index_odd, lambda root: (Path(root) / "ODD").is_file())
    monkeypatch.setattr(sources, "SOURCES", {"odd": odd, **sources.SOURCES})
    (tmp_path / "ODD").write_text("")
    assert sources.detect_source(tmp_path) == "odd"
    assert index_dataset(tmp_path).source == "odd"
    assert index_dataset(tmp_path, "odd").source == "odd"
    monkeypatch.setattr(sources, "SOURCES", {k: v for k, v in sources.SOURCES.items() if k != "odd"})
    with pytest.raises(ValueError, match="unknown data source 'odd'"):
        index_dataset(tmp_path, "odd")


def test_data_source_names_come_from_the_registry():
    from typing import get_args, get_type_hints

    from trainer.config import DataConfig
    from trainer.data.sources import SOURCES

    assert list(SOURCES) == ["idc", "csv", "bach", "breakhis", "folder"]  # detection order
    assert get_args(get_type_hints(DataConfig)["source"]) == (*SOURCES, "synthetic", "auto")


def test_synthetic_is_indexed_as_breakhis_and_marked_generated(tiny_root, tmp_path):
    """data.source synthetic reads BreakHis-named files as breakhis and marks them generated, even in a copy
    without the generator's marker (the one place that rewrites synthetic)."""
    from trainer.data.synthetic import GENERATED_MARKER

    copy = shutil.copytree(tiny_root, tmp_path / "copy", ignore=shutil.ignore_patterns(GENERATED_MARKER))
    assert not index_dataset(copy, "breakhis").generated
    report = index_dataset(copy, "synthetic")
    assert report.source == "breakhis" and report.generated and len(report.records) == 32

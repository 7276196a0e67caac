import shutil
from pathlib import Path

import pytest
from PIL import Image

from trainer.data.index import index_dataset
from trainer.data.sources import detect_source, export_folder, write_manifest


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

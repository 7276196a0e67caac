import json
import shutil
from pathlib import Path

import pytest

from tests.trainer.data.conftest import BAD_KINDS, ODD_BUT_VALID, write_hostile
from trainer.data.breakhis import OFFICIAL_COUNTS, OFFICIAL_PATIENTS, compare_with_official
from trainer.data.records import Record
from trainer.data.sources import index_dataset


@pytest.fixture(scope="module")
def messy_root(tmp_path_factory, tiny_root, tiny_records):
    """A flat BreakHis folder: the tiny dataset plus every kind of problem."""
    root = tmp_path_factory.mktemp("messy")
    for r in tiny_records:
        shutil.copy(r.path, root / Path(r.path).name)
    good = Path(tiny_records[0].path)
    hostile = write_hostile(root, good, "SOB_B_A-14-99999-40-{seq}.{ext}")
    extra = {
        "unparseable": root / "holiday photo.png",
        "duplicate": root / "SOB_B_A-14-88888-40-001.png",
        "not_image": root / "notes.docx",
        "both_classes": root / "SOB_M_DC-14-99999-100-001.png",
    }
    shutil.copy(good, extra["unparseable"])
    shutil.copy(good, extra["duplicate"])
    extra["not_image"].write_text("x")
    (root / "SOB_M_DC-14-99999-100-001.png").write_bytes(
        Path(tiny_records[-1].path).read_bytes() + b"\0"
    )  # new content
    return root, hostile, extra


@pytest.mark.parametrize("verify", ["full", "header"])
def test_every_problem_file_is_reported_and_indexing_goes_on(messy_root, tiny_records, verify):
    root, hostile, extra = messy_root
    report = index_dataset(root, verify=verify, progress=True)
    by_path = {}
    for p in report.problems:
        by_path.setdefault(p.path, []).append(p.kind)
    for kind in BAD_KINDS:
        assert by_path[str(hostile[kind])] == ["unreadable_image"], kind
    assert by_path[str(extra["unparseable"])] == ["unparseable_name"]
    assert by_path[str(extra["duplicate"])] == ["duplicate_file"]
    assert by_path[str(extra["not_image"])] == ["not_an_image_file"]
    assert by_path["14-99999"] == ["patient_in_both_classes"]  # per-patient labels (BreakHis): a problem
    assert report.label_level == "patient"
    kept = {Path(r.path).name for r in report.records}
    assert {Path(hostile[k]).name for k in ODD_BUT_VALID} <= kept
    assert len(report.records) == len(tiny_records) + len(ODD_BUT_VALID) + 1
    # Every file in the folder is either a record or a problem: nothing silently dropped.
    accounted = {r.path for r in report.records} | set(by_path)
    assert {str(p) for p in root.iterdir()} <= accounted
    doc = report.to_json()
    assert json.loads(json.dumps(doc))["counts"]["problems"]["unreadable_image"] == len(BAD_KINDS)


def test_no_verify_still_finds_duplicates_and_empty_files(messy_root):
    root, hostile, extra = messy_root
    report = index_dataset(root, verify=False)
    kinds = {p.path: p.kind for p in report.problems}
    assert kinds[str(extra["duplicate"])] == "duplicate_file"
    assert kinds[str(hostile["empty"])] == "unreadable_image"
    assert str(hostile["truncated"]) not in kinds  # only decoding finds that


def test_two_subtypes_are_flagged_not_hidden(tmp_path, tiny_records):
    src = next(r for r in tiny_records if r.subtype == "DC")
    shutil.copy(src.path, tmp_path / Path(src.path).name)
    other = Path(src.path).name.replace("_DC-", "_LC-")
    (tmp_path / other).write_bytes(Path(src.path).read_bytes() + b"\0")
    report = index_dataset(tmp_path)
    assert len(report.patients) == 1
    assert [p.kind for p in report.problems] == ["patient_in_two_subtypes"]


def test_official_comparison_lists_differences(tiny_root, tmp_path):
    import shutil

    from trainer.data.synthetic import GENERATED_MARKER

    assert index_dataset(tiny_root, verify="none").official_comparison() is None  # generated: not BreakHis
    real_looking = shutil.copytree(tiny_root, tmp_path / "copy")
    (real_looking / GENERATED_MARKER).unlink()  # the same files, as a BreakHis copy would name them
    report = index_dataset(real_looking, verify="none")
    diff = report.official_comparison()
    assert "40X benign: 4 images, official 625 (-621)" in diff
    assert any(d.startswith("patients: 8 slide ids") for d in diff)
    assert report.to_json()["official_comparison"]["matches"] is False


def test_official_counts_match_themselves():
    records = []
    for sub, per_mag in OFFICIAL_COUNTS.items():
        for k in range(OFFICIAL_PATIENTS[sub]):
            for mag, n in per_mag.items():
                # spread the images over the subtype's patients
                share = n // OFFICIAL_PATIENTS[sub] + (1 if k < n % OFFICIAL_PATIENTS[sub] else 0)
                records += [
                    Record(f"{sub}{k}{mag}{i}.png", f"{sub}-{k}", int(sub in ("DC", "LC", "MC", "PC")), sub, mag)
                    for i in range(share)
                ]
    assert len(records) == 7909
    assert compare_with_official(records) == []
    assert compare_with_official(records[1:]) != []


def test_wrong_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        index_dataset(tmp_path / "missing")
    (tmp_path / "random.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="no dataset recognised"):
        index_dataset(tmp_path)
    with pytest.raises(ValueError, match="no BreakHis images"):
        index_dataset(tmp_path, source="breakhis")
    with pytest.raises(ValueError, match="unknown data source"):
        index_dataset(tmp_path, source="imagenet")


def test_copy_with_a_manifest_lists_exactly_the_missing_files(tmp_path):
    """The shared BreakHis copy comes with MANIFEST.csv (path, patient_id, label, subtype, magnification): files it
    lists that the copy lacks are named one by one, beside the official-count differences."""
    import csv
    import shutil

    from trainer.commands.data import format_summary
    from trainer.data.synthetic import GENERATED_MARKER, generate

    root = generate(tmp_path / "breakhis", patients_per_subtype=1, images_per_magnification=2, size=32, seed=2)
    (root / GENERATED_MARKER).unlink()  # stands for the shared (real) BreakHis copy
    records = index_dataset(root, verify="none").records
    with open(root / "MANIFEST.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "patient_id", "label", "subtype", "magnification"])
        for r in records:
            w.writerow([Path(r.path).relative_to(root).as_posix(), r.patient_id, r.label, r.subtype, r.magnification])
    gone = [records[3].path, records[40].path]
    for p in gone:
        Path(p).unlink()
    shutil.rmtree(Path(records[-1].path).parent)  # a whole magnification folder of one patient
    gone += [r.path for r in records if Path(r.path).parent == Path(records[-1].path).parent]

    report = index_dataset(root)
    assert report.source == "csv" and report.is_breakhis
    assert sorted(p.path for p in report.problems if p.kind == "missing_file") == sorted(gone)
    assert len(report.records) == len(records) - len(gone)
    assert report.official_comparison()  # and the counts differ from the official ones
    text = format_summary(report)
    assert "official BreakHis counts:" in text
    # Printed grouped by kind, with a few examples; every file is named with examples=None and in the JSON.
    assert f"  missing_file: {len(gone)}" in text and f"... and {len(gone) - 3} more" in text and "--json" in text
    assert sum(f"    {p}: file not found" in text for p in gone) == 3
    text = format_summary(report, examples=None)
    for p in gone:
        assert f"    {p}: file not found" in text
    assert sorted(p["path"] for p in report.to_json()["problems"]) == sorted(gone)
    assert report.to_json()["counts"]["problems"] == {"missing_file": len(gone)}


def test_patient_in_both_classes_is_a_problem_only_for_per_patient_labels():
    from trainer.data.index import IndexReport, patient_problems

    records = [Record("a.png", "p1", 0), Record("b.png", "p1", 1), Record("c.png", "p2", 1)]
    assert [(p.path, p.kind) for p in patient_problems(records)] == [("p1", "patient_in_both_classes")]
    assert patient_problems(records, "patient") == patient_problems(records)
    assert patient_problems(records, "patch") == []
    with pytest.raises(ValueError, match="label_level"):
        IndexReport("x", "csv", label_level="slide")


def test_images_under_the_smallest_side_are_too_small_and_skipped(tmp_path):
    from PIL import Image

    from trainer.data.images import MIN_SIDE

    sizes = {"ok.png": (MIN_SIDE, MIN_SIDE), "strip.png": (50, MIN_SIDE - 1), "tall.png": (1, 50)}
    for i, (name, size) in enumerate(sizes.items()):
        Image.new("RGB", size, (10 * i, 20, 30)).save(tmp_path / name)
    (tmp_path / "manifest.csv").write_text("path,label\n" + "".join(f"{n},benign\n" for n in sizes))
    report = index_dataset(tmp_path)
    assert [Path(r.path).name for r in report.records] == ["ok.png"]
    assert {Path(p.path).name: p.kind for p in report.problems} == {"strip.png": "too_small", "tall.png": "too_small"}

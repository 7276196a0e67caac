"""data.patient_grouping: BreakHis slide ids that share <YY>-<number> (14-22549AB, 14-22549CD, 14-22549G) are kept
in one fold under the cautious default, each its own patient under "slide"; the summary says which."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from trainer.config import ExperimentConfig
from trainer.data.breakhis import BreakHisName, canonical_relpath
from trainer.data.grouping import group_key, grouping_note, patient_groups, shared_numbers
from trainer.data.records import SUBTYPE_LABEL, Record
from trainer.data.sources import index_dataset
from trainer.data.splits import Fold, Splits, make_splits

# (subtype, slide id): the shared copy's grouped slides (three numbers shared) among single ones, both classes.
SLIDES = [
    ("A", "14-22549AB"), ("A", "14-22549CD"), ("A", "14-22549G"), ("F", "14-21998CD"), ("PT", "14-21998AB"),
    ("TA", "14-16184"), ("TA", "14-16184CD"), ("F", "14-25197"), ("F", "14-9133"), ("PT", "14-22704"),
    ("PT", "14-29315EF"), ("DC", "14-10926"), ("DC", "14-11031"), ("DC", "14-2523"), ("MC", "14-18842"),
    ("MC", "14-18842D"), ("MC", "14-19979"), ("PC", "15-190EF"), ("PC", "14-9146"), ("LC", "14-12204"),
]  # fmt: skip
GROUPS = {"14-22549": 3, "14-21998": 2, "14-16184": 2, "14-18842": 2}


@pytest.fixture(scope="module")
def breakhis_root(tmp_path_factory):
    """The canonical BreaKHis_v1 layout, JPEG (as ../shared/data/breakhis): two 100X images a slide, one at 40X."""
    root = tmp_path_factory.mktemp("breakhis")
    rng = np.random.default_rng(0)
    for sub, pid in SLIDES:
        yy, slide = pid.split("-")
        for mag, seq in (("100X", 1), ("100X", 2), ("40X", 1)):
            rel = canonical_relpath(BreakHisName(SUBTYPE_LABEL[sub], sub, yy, slide, mag, seq))
            out = root / rel.replace(".png", ".jpg")
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (46, 70, 3), dtype=np.uint8)).save(out, quality=88)
    return root


def test_group_key():
    assert group_key("14-22549AB") == group_key("14-22549G") == group_key("14-22549") == "14-22549"
    assert group_key("15-190EF") == "15-190"
    assert group_key("8863") == "8863" and group_key("bach-x1") == "bach-x1"  # other datasets' ids unchanged


def test_the_breakhis_source_reads_the_jpeg_layout(breakhis_root):
    report = index_dataset(breakhis_root, "breakhis")
    assert report.source == "breakhis" and not report.problems
    assert len(report.records) == 3 * len(SLIDES)
    assert {r.magnification for r in report.records} == {"40X", "100X"}
    assert {(r.subtype, r.patient_id) for r in report.records} == set(SLIDES)
    assert all(r.path.endswith(".jpg") and r.dataset == "breakhis" for r in report.records)


def test_groups_of_the_cautious_rule(breakhis_root):
    records = index_dataset(breakhis_root).records
    assert {k: len(v) for k, v in shared_numbers(records).items()} == GROUPS
    groups = patient_groups(records)  # default: group
    assert groups["14-22549G"] == groups["14-22549AB"] == "14-22549"
    assert groups["14-16184"] == groups["14-16184CD"] == "14-16184"
    assert "14-29315EF" not in groups and "14-9133" not in groups  # alone: nothing to keep together
    assert patient_groups(records, "slide") == {}
    # Only BreakHis ids: an IDC-like id with the same shape is left alone.
    other = [Record("a.png", "14-1A", 0, dataset="csv"), Record("b.png", "14-1B", 1, dataset="csv")]
    assert patient_groups(other) == {} and grouping_note(other) is None
    with pytest.raises(ValueError, match="one of group, slide"):
        patient_groups(records, "person")


def test_grouped_slides_share_every_fold_part(breakhis_root):
    records = index_dataset(breakhis_root).records
    groups = patient_groups(records)
    for seed in range(5):
        splits = make_splits(records, 5, seed, 0.2, groups=groups)
        splits.check_groups(groups)
        assert sorted(p for f in splits.folds for p in f.test_patients) == sorted(pid for _, pid in SLIDES)
        for f in splits.folds:
            where = {p: part for part, ids in (("tr", f.train_patients), ("va", f.val_patients),
                                               ("te", f.test_patients)) for p in ids}  # fmt: skip
            for key in GROUPS:
                assert len({where[p] for p in groups if groups[p] == key}) == 1
    assert splits.patient_groups == groups and set(splits.patient_labels) == {pid for _, pid in SLIDES}


def test_slides_alone_can_be_split_and_such_splits_are_refused_under_group(breakhis_root):
    records = index_dataset(breakhis_root).records
    groups = patient_groups(records)
    apart = Splits(
        seed=0,
        n_folds=2,
        val_fraction=0.0,
        folds=[Fold(0, ["14-22549AB"], [], ["14-22549CD", "14-22549G"]), Fold(1, ["14-22549CD"], [], ["14-22549AB"])],
    )
    with pytest.raises(ValueError, match=r"fold 0 puts 14-22549AB, 14-22549CD, 14-22549G .* different parts"):
        apart.check_groups(groups)
    apart.check_groups({})  # patient_grouping: slide asks nothing of them
    # Without grouping, some seed separates a shared number's slides (what the cautious rule prevents).
    separated = False
    for seed in range(20):
        for f in make_splits(records, 5, seed, 0.2).folds:
            test = set(f.test_patients)
            separated |= any(len({p in test for p in groups if groups[p] == key}) > 1 for key in GROUPS)
    assert separated


def test_summary_says_how_slides_are_grouped(breakhis_root, tmp_path, capsys):
    from trainer.cli import main

    assert main(["data", "summary", str(breakhis_root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "patient grouping `group` (cautious)" in out and "20 slide ids -> 15 patients for the folds" in out
    assert "14-22549AB + 14-22549CD + 14-22549G" in out
    assert main(["data", "summary", str(breakhis_root), "--no-progress", "--patient-grouping", "slide"]) == 0
    out = capsys.readouterr().out
    assert "patient grouping `slide`: each of the 20 slide ids is its own patient" in out
    assert "may be one person: 14-16184 + 14-16184CD" in out
    main(["data", "splits", str(breakhis_root), "--out", str(tmp_path / "s.json"), "--no-progress"])
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["patient_groups"]["14-22549G"] == "14-22549"
    assert Splits.load(tmp_path / "s.json").patient_groups == saved["patient_groups"]


def test_config_default_is_the_cautious_rule():
    assert ExperimentConfig().data.patient_grouping == "group"
    assert ExperimentConfig().with_overrides(["data.patient_grouping=slide"]).data.patient_grouping == "slide"
    with pytest.raises(ValueError, match="patient_grouping"):
        ExperimentConfig().with_overrides(["data.patient_grouping=person"])


def test_a_run_keeps_grouped_slides_in_one_fold(breakhis_root, tmp_path):
    """The runner's folds (splits.json) follow data.patient_grouping, and its data report says so; a splits file
    made without the grouping is refused when it separates a group."""
    from trainer.cv import load_or_make_splits, prepare_data
    from trainer.rundir import RunDir

    cfg = ExperimentConfig.from_dict(
        {
            "name": "g",
            "output_dir": str(tmp_path),
            "data": {"source": "breakhis", "root": str(breakhis_root), "folds": 5},
        }  # fmt: skip
    )
    run_dir = tmp_path / "g"
    records, level = prepare_data(cfg, run_dir)
    splits = load_or_make_splits(cfg, records, run_dir, level)
    assert splits.patient_groups == patient_groups(records)
    notes = json.loads(RunDir(run_dir).data_report_file.read_text())["notes"]
    assert any("20 slide ids -> 15 patients" in n for n in notes)
    apart = next(
        s for seed in range(20) if not _keeps(s := make_splits(records, 5, seed, 0.2), patient_groups(records))
    )
    apart.save(tmp_path / "apart.json")
    other = cfg.with_overrides([f"data.splits_file={tmp_path / 'apart.json'}", "name=g2"])
    with pytest.raises(ValueError, match="one patient group"):
        load_or_make_splits(other, records, tmp_path / "g2", level)
    load_or_make_splits(other.with_overrides(["data.patient_grouping=slide"]), records, tmp_path / "g3", level)


def _keeps(splits: Splits, groups: dict) -> bool:
    try:
        splits.check_groups(groups)
        return True
    except ValueError:
        return False


def test_folds_over_the_patients_at_one_magnification(tmp_path):
    """data.split_on_magnifications: patients without an image at the run's magnification are left out of the
    folds, so no 100X test fold is made of patients that have only 40X images."""
    from trainer.cv import load_or_make_splits, prepare_data

    rng = np.random.default_rng(1)
    for k in range(12):  # slides 0-5 benign, 6-11 malignant; slides 0-2 and 6-8 have 40X images only
        sub = "A" if k < 6 else "DC"
        mags = ("40X",) if k % 6 < 3 else ("40X", "100X")
        for mag in mags:
            rel = canonical_relpath(BreakHisName(SUBTYPE_LABEL[sub], sub, "14", str(100 + k), mag, 1))
            out = tmp_path / "bh" / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(out)
    data = {"source": "breakhis", "root": str(tmp_path / "bh"), "magnifications": ["100X"], "folds": 3}
    at_100x = {f"14-{100 + k}" for k in range(12) if k % 6 >= 3}
    for flag, want in ((True, at_100x), (False, {f"14-{100 + k}" for k in range(12)})):
        cfg = ExperimentConfig.from_dict({"output_dir": str(tmp_path), "name": f"m{flag}", "data": data})
        cfg = cfg.with_overrides([f"data.split_on_magnifications={str(flag).lower()}"])
        records, level = prepare_data(cfg)
        splits = load_or_make_splits(cfg, records, tmp_path / cfg.name, level)
        assert {p for f in splits.folds for p in f.test_patients} == want
        if flag:  # each test fold holds a benign and a malignant patient with 100X images
            assert all({r.label for r in records if r.patient_id in f.test_patients} == {0, 1} for f in splits.folds)
    all_listed = cfg.with_overrides(["data.split_on_magnifications=true", "data.magnifications=[100X, all]"])
    assert len(prepare_data(all_listed)[0]) == 18  # "all" keeps every image

"""Several dataset roots as one dataset (trainer.data.roots): the union of two IDC-layout folders (as idc/ +
idc-more/), the patient-id rule across roots, cross-root duplicates, folds over the union, the CLI and config."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from tests.trainer.data.conftest import IDC_PATIENTS, write_idc
from trainer.config import ExperimentConfig
from trainer.data.roots import UnionReport, index_roots
from trainer.data.sources import index_dataset
from trainer.data.splits import make_splits

MORE_PATIENTS = {"10254": (5, 3), "10256": (4, 4), "10257": (6, 2), "10258": (3, 5)}


@pytest.fixture(scope="module")
def two_roots(tmp_path_factory):
    """idc/ (six patients, two edge tiles) and idc-more/ (four other patients), as in ../shared."""
    base = tmp_path_factory.mktemp("roots")
    return (
        write_idc(base / "idc", IDC_PATIENTS, manifest=True),
        write_idc(base / "idc-more", MORE_PATIENTS, edges=False, manifest=True, seed=1),
    )


def test_a_single_root_gives_the_plain_report(idc_root):
    one, plain = index_roots(idc_root), index_dataset(idc_root)
    assert type(one) is type(plain) and not isinstance(one, UnionReport)
    assert [r.path for r in one.records] == [r.path for r in plain.records]
    assert index_roots([str(idc_root)]).records == plain.records


def test_two_roots_are_one_dataset(two_roots):
    idc, more = two_roots
    report = index_roots([idc, more])
    a, b = index_dataset(idc), index_dataset(more)
    assert isinstance(report, UnionReport)
    assert report.records == a.records + b.records  # every image of each, ids unchanged (no clash)
    assert set(report.patients) == set(IDC_PATIENTS) | set(MORE_PATIENTS)
    assert report.label_level == "patch" and report.source == "idc"
    assert Counter(p.kind for p in report.problems) == Counter(p.kind for p in a.problems + b.problems)
    assert any("2 dataset folders indexed as one dataset; no patient id appears in two" in n for n in report.notes)
    assert sum("IDC: labels are per patch" in n for n in report.notes) == 1  # each root's note once
    listed = json.loads(json.dumps(report.to_json()))["roots"]
    assert [(r["images"], r["patients"]) for r in listed] == [(len(a.records), 6), (len(b.records), 4)]


def test_folds_over_the_union_keep_patients_disjoint(two_roots):
    report = index_roots(list(two_roots))
    splits = make_splits(report.records, 5, 7, 0.2, label_level=report.label_level)
    tests = [p for f in splits.folds for p in f.test_patients]
    assert sorted(tests) == sorted(report.patients)  # each of the 10 patients in exactly one test fold
    for f in splits.folds:
        parts = [set(f.train_patients), set(f.val_patients), set(f.test_patients)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert set().union(*parts) == set(report.patients)


def test_one_patient_in_two_roots_is_one_patient(tmp_path):
    """A patient split over two folders (other patches of 8863 in the second) stays in one fold: the summary says
    so, the id is unchanged, and the same file name twice is kept once."""
    first = write_idc(tmp_path / "a", {"8863": (4, 4), "8864": (4, 4), "8865": (4, 4)}, edges=False)
    second = write_idc(tmp_path / "b", {"8863": (6, 6), "9000": (4, 4), "9001": (4, 4)}, edges=False, seed=5)
    report = index_roots([first, second])
    assert sorted(report.patients) == ["8863", "8864", "8865", "9000", "9001"]
    # write_idc cuts the same grid, so some of 8863's names recur in b/ (with other pixels): each is kept once.
    both = {p.name for p in (first / "8863").rglob("*.png")} & {p.name for p in (second / "8863").rglob("*.png")}
    dup = [p for p in report.problems if p.kind == "duplicate_name"]
    assert len(both) == 6 and sorted(p.path.rsplit("/", 1)[1] for p in dup) == sorted(both)
    assert all(p.path.startswith(str(second)) for p in dup)
    assert sum(r.patient_id == "8863" for r in report.records) == 8 + 12 - 6
    assert any("1 patient id(s) appear in more than one of them" in n and "8863" in n for n in report.notes)
    splits = make_splits(report.records, 2, 0, 0.0, label_level="patch")
    assert sum("8863" in f.test_patients for f in splits.folds) == 1


def test_ids_of_different_datasets_stay_apart(tmp_path):
    """IDC patient 8863 and a manifest's patient 8863 are different people: both become <dataset>:<id>."""
    from PIL import Image

    idc = write_idc(tmp_path / "idc", {"8863": (3, 3), "8864": (3, 3)}, edges=False)
    other = tmp_path / "other"
    other.mkdir()
    rows = ["path,label,patient_id"]
    for i, label in enumerate(["benign", "malignant"]):
        Image.new("RGB", (40, 40), (200, 100 + 50 * i, 180)).save(other / f"{i}.png")
        rows.append(f"{i}.png,{label},{8863 + 10 * i}")
    (other / "manifest.csv").write_text("\n".join(rows) + "\n")
    report = index_roots([idc, other])
    assert {r.patient_id for r in report.records} == {"idc:8863", "8864", "csv:8863", "8873"}
    assert any("written <dataset>:<id>" in n for n in report.notes)


def test_bad_roots_are_refused(two_roots, tmp_path):
    with pytest.raises(ValueError, match="given twice"):
        index_roots([two_roots[0], str(two_roots[0]) + "/"])
    with pytest.raises(FileNotFoundError, match="not found"):
        index_roots([two_roots[0], tmp_path / "missing"], "idc")
    with pytest.raises(ValueError, match="no dataset folder"):
        index_roots([])


# --- config and CLI ----------------------------------------------------------------------------------------


def test_config_takes_one_root_or_several(tmp_path):
    old = ExperimentConfig.from_dict({"data": {"root": "a/b"}})
    assert old.data.root == "a/b" and old.data.roots == ["a/b"]
    many = old.with_overrides(["data.root=[a, b]"])
    assert many.data.root == ["a", "b"] and many.data.roots == ["a", "b"]
    assert old.with_overrides(["data.root=[a]"]).data.root == "a"  # one root stays a plain string
    assert ExperimentConfig().data.roots == []
    # Saved and read back (config.yaml of a run) unchanged.
    path = tmp_path / "c.yaml"
    many.to_yaml(path)
    assert ExperimentConfig.from_yaml(path).data.root == ["a", "b"]
    assert yaml.safe_load(path.read_text())["data"]["root"] == ["a", "b"]
    with pytest.raises(ValueError, match=r"data\.root\[1\]: expected str"):
        old.with_overrides(["data.root=[a, {x: 1}]"])


def test_cli_data_root_repeated(two_roots, capsys):
    from trainer.cli import main

    idc, more = map(str, two_roots)
    assert main(["cv", "--config", "trainer/configs/quick_demo.yaml", "--data-root", idc, "--data-root", more,
                 "--print-config"]) == 0  # fmt: skip
    assert yaml.safe_load(capsys.readouterr().out)["data"]["root"] == [idc, more]
    assert main(["cv", "--config", "trainer/configs/quick_demo.yaml", "--data-root", idc, "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["root"] == idc


def test_data_summary_and_splits_show_the_union(two_roots, tmp_path, capsys):
    from trainer.cli import main

    idc, more = map(str, two_roots)
    assert main(["data", "summary", idc, more, "--no-progress", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert f"dataset: {idc} + {more} (idc)" in out
    assert f"  {idc} (idc): " in out and f"  {more} (idc): 32 images, 4 patients" in out
    assert "patients: 10 (labels per patch" in out and "indexed as one dataset" in out
    assert len(json.loads((tmp_path / "r.json").read_text())["roots"]) == 2
    assert main(["data", "splits", idc, more, "--out", str(tmp_path / "s.json"), "--folds", "3", "--no-progress"]) == 0
    folds = json.loads((tmp_path / "s.json").read_text())["folds"]
    assert sorted(p for f in folds for p in f["test_patients"]) == sorted([*IDC_PATIENTS, *MORE_PATIENTS])


def test_cv_trains_on_two_roots(two_roots, tmp_path):
    """A run over both folders: its data report names both, its folds cover every patient of the union."""
    from trainer.cv import run_experiment
    from trainer.rundir import RunDir

    cfg = ExperimentConfig.from_dict(
        {
            "name": "union",
            "output_dir": str(tmp_path),
            "data": {
                "source": "idc",
                "root": [str(r) for r in two_roots],
                "magnifications": ["40X"],
                "folds": 2,
                "val_fraction": 0.2,
                "input_size": 32,
                "num_workers": 0,
            },  # fmt: skip
            "models": [{"name": "resnet18", "pretrained": False}],
            "train": {"epochs": 1, "batch_size": 8, "max_steps": 1, "early_stopping_patience": 0},
            "trust": {"enabled": False},
        }
    )
    res = run_experiment(cfg, progress=False, cpu=True)
    assert res["state"] == "finished"
    run = RunDir(cfg.run_dir)
    assert [r["root"] for r in json.loads(run.data_report_file.read_text())["roots"]] == [str(r) for r in two_roots]
    splits = json.loads(run.splits_file.read_text())
    assert sorted(p for f in splits["folds"] for p in f["test_patients"]) == sorted([*IDC_PATIENTS, *MORE_PATIENTS])
    assert ExperimentConfig.from_yaml(run.config_file).data.root == [str(r) for r in two_roots]
    assert f"Data: **real IDC**, `idc` at `{two_roots[0]} + {two_roots[1]}`" in (cfg.run_dir / "results.md").read_text()
    # trainer evaluate on both folders: every usable image of the union scored once.
    from trainer.cli import main

    out = tmp_path / "eval"
    best = run.fold("resnet18", "40X", 0).best
    assert main(["evaluate", str(best), *map(str, two_roots), "--out", str(out), "--threads", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == len(index_roots(list(two_roots)).records) and metrics["patients"] == 10
    assert metrics["data"] == " + ".join(map(str, two_roots))

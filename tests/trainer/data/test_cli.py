"""``python -m trainer data {synth,summary,splits}`` as the README shows them."""

from __future__ import annotations

import json

from trainer.cli import main
from trainer.data.splits import Splits


def test_synth_summary_splits(tmp_path, capsys):
    root = tmp_path / "synthetic"
    assert (
        main(
            [
                "data",
                "synth",
                str(root),
                "--patients-per-subtype",
                "1",
                "--images-per-magnification",
                "1",
                "--size",
                "32",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["data", "summary", str(root), "--json", str(tmp_path / "report.json"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "images: 32   patients: 8 (4 benign, 4 malignant)" in out
    assert any(line.split() == ["40X", "4", "4", "8"] for line in out.splitlines())  # magnification x class table
    # Generated data is BreakHis-named but not BreakHis: no comparison with the official counts.
    assert "official BreakHis counts" not in out and "generated data" in out and "problems: 0" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counts"]["by_magnification"] == {"40X": 8, "100X": 8, "200X": 8, "400X": 8}
    assert report.get("official_comparison") is None

    for name in ("a.json", "b.json"):
        assert (
            main(
                [
                    "data",
                    "splits",
                    str(root),
                    "--out",
                    str(tmp_path / name),
                    "--folds",
                    "2",
                    "--seed",
                    "7",
                    "--no-progress",
                ]
            )
            == 0
        )
    assert "fold 0: train" in capsys.readouterr().out
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()  # same seed, same folds
    splits = Splits.load(tmp_path / "a.json")
    assert len(splits.folds) == 2 and splits.seed == 7
    tests = [set(f.test_patients) for f in splits.folds]
    assert not tests[0] & tests[1] and len(tests[0] | tests[1]) == 8


def test_summary_of_per_patch_data_is_one_class_mix_table_and_grouped_problems(tmp_path, capsys):
    from tests.trainer.data.conftest import IDC_PATIENTS, write_idc

    root = write_idc(tmp_path / "idc", IDC_PATIENTS, manifest=True)
    extra = root / "8863" / "0" / "notes.docx"  # another kind of problem, in the same folder
    extra.write_text("x")
    assert (
        main(["data", "summary", str(root), "--no-progress", "--examples", "1", "--json", str(tmp_path / "r.json")])
        == 0
    )
    out = capsys.readouterr().out
    lines = out.splitlines()
    n = sum(b + m for b, m in IDC_PATIENTS.values())
    assert f"images: {n}   patients: 6 (labels per patch; 6 hold both classes)" in out
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["patient"])
    assert lines[header].split() == ["patient", "benign", "malignant", "total", "%", "malignant"]
    rows = [line.split() for line in lines[header + 1 : header + 1 + len(IDC_PATIENTS) + 1]]
    for row, (pid, (b, m)) in zip(rows, IDC_PATIENTS.items(), strict=False):
        assert row == [pid, str(b), str(m), str(b + m), f"{100 * m / (b + m):.1f}"]
    total_b = sum(b for b, _ in IDC_PATIENTS.values())
    assert rows[-1][:4] == ["all", str(total_b), str(n - total_b), str(n)]
    assert "subtype" not in out  # no record has one: no subtype table
    assert "patient_in_both_classes" not in out
    # Problems grouped by kind: a count, at most --examples files each, and where to get them all.
    assert "problems: 3 (not_an_image_file: 1, too_small: 2); problem files are skipped" in out
    assert "  too_small: 2" in out and "    ... and 1 more" in out and "--json" in out
    assert sum("image too small to classify" in line for line in lines) == 1
    assert sum(line.startswith("    ") and str(root) in line for line in lines) == 2
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"]["label_level"] == "patch" and len(report["problems"]) == 3

    assert main(["data", "splits", str(root), "--out", str(tmp_path / "s.json"), "--folds", "2", "--no-progress"]) == 0
    splits = Splits.load(tmp_path / "s.json")
    assert splits.label_level == "patch"
    assert sorted(p for f in splits.folds for p in f.test_patients) == sorted(IDC_PATIENTS)

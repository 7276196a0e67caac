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

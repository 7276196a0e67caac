"""``python -m trainer explain-eval``: one table (markdown, JSON, CSV) over the bundled demo CNN and VLM on
generated IDC patches, and its readers for the app (load_table, method_verdicts)."""

import json
from pathlib import Path

import pytest

from tests.trainer.explain.test_pointing import idc_folder
from trainer.explain.report import load_table, method_verdicts, write_table

ASSETS = Path(__file__).resolve().parents[3] / "assets" / "models"


def test_explain_eval_writes_one_table_for_both_families(tmp_path, capsys):
    from trainer.cli import main

    data = idc_folder(tmp_path / "idc", patients=("201", "202"))
    out = tmp_path / "out"
    argv = ["explain-eval", f"{ASSETS / 'demo-cnn'},{ASSETS / 'demo-vlm'}", str(data)]
    argv += ["--methods", "Grad-CAM,attention,Sobel edges", "--limit", "4", "--sanity-images", "2"]
    argv += ["--sanity-layers", "2", "--mosaics", "2", "--out", str(out), "--no-progress", "--threads", "1"]
    assert main(argv) == 0
    table = load_table(out)
    rows = {(r["model"], r["method"]): r for r in table["rows"]}
    assert set(rows) == {
        ("demo-cnn", "Grad-CAM"),
        ("demo-cnn", "Sobel edges"),
        ("demo-vlm", "attention"),
        ("demo-vlm", "Sobel edges"),
    }
    assert table["n_images"] == 4 and table["n_mosaics"] == 2 and table["patients"] == ["201", "202"]
    assert {(s["model"], s["method"]) for s in table["skipped"]} == {
        ("demo-cnn", "attention"),
        ("demo-vlm", "Grad-CAM"),
    }
    for r in rows.values():
        assert -0.5 <= r["road_combined"] <= 0.5 and 0 <= r["deletion_auc"] <= 1 and 0 <= r["insertion_auc"] <= 1
        assert len(r["sanity"]["layers"]) == 2 and 0 <= r["pointing"] <= 1 and r["pointing_n"] == 2
        assert r["seconds_map"] >= 0 and r["seconds_score"] > 0
    assert rows[("demo-cnn", "Sobel edges")]["sanity_final"] == pytest.approx(1.0)  # the same map whatever the weights
    assert rows[("demo-cnn", "Sobel edges")]["sane"] is False
    md = (out / "explain_eval.md").read_text()
    assert "| demo-vlm | attention | 4 |" in md and "ROAD combined" in md
    assert (out / "explain_eval.csv").read_text().splitlines()[0].startswith("model,method,n_images,road_combined")
    assert "pointing_chance" in (out / "explain_eval.csv").read_text().splitlines()[0]
    assert "written to" in capsys.readouterr().out
    verdicts = method_verdicts(out / "explain_eval.json")
    assert set(verdicts) == {"Grad-CAM", "attention", "Sobel edges"} and verdicts["Sobel edges"]["sane"] is False


def test_verdicts_combine_models_and_say_what_was_not_measured(tmp_path):
    rows = [
        {"model": "a", "method": "Grad-CAM", "road_combined_low": 0.02, "sanity_final": 0.1},
        {"model": "b", "method": "Grad-CAM", "road_combined_low": -0.01, "sanity_final": 0.2},
        {"model": "a", "method": "Eigen-CAM", "road_combined_low": -0.02, "sanity_final": 0.9},
        {"model": "a", "method": "attention", "road_combined_low": 0.05},
    ]
    write_table({"rows": rows}, tmp_path)
    v = method_verdicts(tmp_path / "explain_eval.json")
    assert v["Grad-CAM"] == {"faithful": False, "sane": True, "neither": False}
    assert v["Eigen-CAM"] == {"faithful": False, "sane": False, "neither": True}
    assert v["attention"] == {"faithful": True, "sane": None, "neither": False}
    assert method_verdicts(tmp_path / "explain_eval.json", model="a")["Grad-CAM"]["faithful"] is True


def test_a_missing_or_foreign_table_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no explanation table"):
        load_table(tmp_path)
    (tmp_path / "explain_eval.json").write_text(json.dumps({"runs": []}))
    with pytest.raises(ValueError, match="not an explain-eval table"):
        load_table(tmp_path)


def test_unknown_methods_are_refused(tmp_path):
    from trainer.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["explain-eval", str(ASSETS / "demo-cnn"), str(idc_folder(tmp_path)), "--methods", "LIME"])
    assert exc.value.code == 2

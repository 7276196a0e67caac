"""``python -m trainer evaluate`` and ``compare`` from the command line, on the shared tiny CV run."""

from __future__ import annotations

import csv
import json

import pytest

from trainer.cli import main


def test_evaluate_cli_writes_predictions_and_metrics(cv_run, tiny_data, tmp_path, capsys):
    ckpt = cv_run / "resnet18" / "40X" / "fold0" / "best"
    out = tmp_path / "eval"
    assert (
        main(["evaluate", str(ckpt), str(tiny_data), "--magnification", "100X", "--out", str(out), "--threads", "1"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "32 images (0 skipped as problems), input 32 px" in printed and "Accuracy" in printed
    res = json.loads((out / "metrics.json").read_text())
    assert res["n"] == 32 and res["magnification"] == "100X" and res["input_size"] == 32
    assert res["trained_on"]["model"] == "resnet18" and res["trained_on"]["fold"] == 0
    rows = list(csv.DictReader((out / "predictions.csv").read_text().splitlines()))
    assert len(rows) == 32 and {r["magnification"] for r in rows} == {"100X"}
    y = [int(r["label"]) for r in rows]
    pred = [int(float(r["prob_malignant"]) >= 0.5) for r in rows]
    assert res["metrics"]["accuracy"] == pytest.approx(sum(a == b for a, b in zip(y, pred, strict=True)) / 32)
    # The share flagged OOD and the metrics on the images kept (the checkpoint has a trust reference).
    assert "flagged OOD:" in printed and "not OOD" in printed
    trust = res["trust"]
    assert 0.0 <= trust["ood_share"] <= 1.0 and trust["n_in_distribution"] == round(32 * (1 - trust["ood_share"]))
    assert res["metrics_in_distribution"]["n"] == trust["n_in_distribution"]
    assert res["metrics_answered"]["n"] == trust["n_answered"]
    assert {"ood_score", "ood", "abstain"} <= set(rows[0])


def test_evaluate_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(tmp_path / "nope"), str(tmp_path)])
    assert exc.value.code == 2
    assert "error: checkpoint folder not found" in capsys.readouterr().err


def test_compare_cli_two_models_of_one_run(cv_run, tmp_path, capsys):
    out = tmp_path / "cmp.json"
    assert (
        main(
            [
                "compare",
                str(cv_run),
                str(cv_run),
                "--model-a",
                "resnet18",
                "--model-b",
                "mobilenet_v3_small",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| Magnification | Images | Acc. A | Acc. B | McNemar p | AUC A | AUC B | DeLong p |" in printed
    res = json.loads(out.read_text())
    assert res["same_splits"] is True
    (row,) = res["rows"]
    assert row["magnification"] == "40X" and row["n_images"] == 32 and row["folds"] == [0, 1]
    assert 0.0 <= row["mcnemar"]["p_value"] <= 1.0 and row["mcnemar"]["n"] == 32
    assert set(row["wilcoxon"]) == {"accuracy", "f1", "roc_auc"}

    # The McNemar counts agree with the two runs' predictions.
    def correct(model):
        rows = {}
        for k in (0, 1):
            for r in csv.DictReader((cv_run / model / "40X" / f"fold{k}" / "predictions.csv").read_text().splitlines()):
                rows[r["image_id"]] = r["pred"] == r["label"]
        return rows

    a, b = correct("resnet18"), correct("mobilenet_v3_small")
    assert row["mcnemar"]["a_only"] == sum(a[i] and not b[i] for i in a)
    assert row["mcnemar"]["b_only"] == sum(b[i] and not a[i] for i in a)


def test_compare_needs_two_different_models(cv_run, capsys):
    with pytest.raises(SystemExit):
        main(["compare", str(cv_run), str(cv_run)])
    assert "holds several models" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", str(cv_run), str(cv_run), "--model-a", "resnet18", "--model-b", "resnet18"])
    assert "two different models" in capsys.readouterr().err

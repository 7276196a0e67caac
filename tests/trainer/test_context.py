"""trainer.context: each patch scored with its slide neighbours, from the coordinates predictions.csv keeps (or
IDC names), per test fold of a run folder, and the ``trainer context`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainer.cli import main
from trainer.context import context_metrics, context_report, neighbour_mean, tile_step
from trainer.data.records import Record
from trainer.runfiles import write_predictions


def test_tile_step_is_the_commonest_gap():
    assert tile_step([1001, 1051, 1101, 1301], [501, 551]) == 50
    assert tile_step([7], [9]) is None


def test_neighbour_mean_over_the_3x3_block_of_the_same_patient():
    # Patient a: a 3x3 grid (step 50) with a malignant-looking centre; patient b: one patch at a's centre.
    xs = [1000 + 50 * i for i in range(3) for _ in range(3)] + [1050]
    ys = [500 + 50 * j for _ in range(3) for j in range(3)] + [550]
    pids = ["a"] * 9 + ["b"]
    probs = [0.0] * 9 + [1.0]
    probs[4] = 0.9  # a's centre (1050, 550)
    out = neighbour_mean(pids, xs, ys, probs)
    assert out[4] == pytest.approx(0.9 / 9)  # the centre: itself and its 8 neighbours
    assert out[0] == pytest.approx(0.9 / 4)  # a corner: itself, two edges and the centre
    assert out[1] == pytest.approx(0.9 / 6)  # an edge: 2x3 block
    assert out[9] == 1.0  # b is alone: a's patches at the same place are another slide
    assert np.array_equal(neighbour_mean(pids, xs, ys, probs, radius=0), probs)


def _rows(records, probs):
    return [
        {
            "path": r.path,
            "patient_id": r.patient_id,
            "label": str(r.label),
            "prob_malignant": str(p),
            "x": r.x,
            "y": r.y,
        }
        for r, p in zip(records, probs, strict=True)
    ]


def test_context_metrics_from_coordinates_or_idc_names_and_none_without():
    recs = [
        Record(f"/d/{pid}_idx5_x{x}_y100_class{lab}.png", pid, lab, None, "40X", "idc", x, 100)
        for pid in ("8001", "8002")  # IDC patient ids are numbers
        for x, lab in zip(range(0, 500, 50), [1] * 5 + [0] * 5, strict=True)
    ]
    # A noisy model: one patch per half scored the wrong way round; its neighbours outvote it.
    probs = [0.8, 0.9, 0.2, 0.85, 0.7, 0.3, 0.1, 0.75, 0.2, 0.1] * 2
    res = context_metrics(_rows(recs, probs))
    assert res["n"] == 20 and res["patch"]["accuracy"] == pytest.approx(0.8)
    assert res["context"]["accuracy"] > res["patch"]["accuracy"] and res["context"]["roc_auc"] > res["patch"]["roc_auc"]
    named = [{k: v for k, v in r.items() if k not in ("x", "y")} for r in _rows(recs, probs)]  # older files
    assert context_metrics(named) == res
    plain = [{**r, "path": f"/d/img{i}.png"} for i, r in enumerate(named)]
    assert context_metrics(plain) is None


def _fold(run, fold, recs, probs):
    folder = run / "resnet18" / "40X" / f"fold{fold}"
    p = np.array([[1 - q, q] for q in probs])
    write_predictions(
        folder / "predictions.csv", recs, np.array([r.label for r in recs]), p, ["benign", "malignant"], "40X", fold
    )
    (folder / "metrics.json").write_text(json.dumps({"model": "resnet18", "magnification": "40X", "fold": fold}))


def test_context_report_and_command_over_a_runs_folds(tmp_path, capsys):
    run = tmp_path / "run"
    for fold, pid in enumerate(("p1", "p2")):
        recs = [
            Record(f"/d/{pid}/{lab}/img{x}.png", pid, lab, None, "40X", "idc", x, 7)
            for x, lab in zip(range(0, 400, 50), [1] * 4 + [0] * 4, strict=True)
        ]
        _fold(run, fold, recs, [0.9, 0.3, 0.8, 0.7, 0.2, 0.6, 0.1, 0.2])
    res = context_report(run)
    assert [f["fold"] for f in res["folds"]] == [0, 1] and res["summary"][0]["n_folds"] == 2
    assert res["summary"][0]["context"]["roc_auc"] > res["summary"][0]["patch"]["roc_auc"]
    out = tmp_path / "context.json"
    assert main(["context", str(run), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "roc_auc (patch -> 3x3 context)" in printed and "mean of 2" in printed
    assert json.loads(out.read_text())["radius"] == 1
    with pytest.raises(SystemExit):
        main(["context", str(tmp_path / "nowhere")])
    assert "folder not found" in capsys.readouterr().err

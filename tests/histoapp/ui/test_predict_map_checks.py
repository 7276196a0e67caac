"""Predict's Check the maps (issue 27) with real models: the faithfulness line under each map, kept with the map
it measured, and the method picker's marks from an explain-eval table."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

from histoapp.analysis import explain_eval
from histoapp.models import map_checks, runner
from histoapp.models.ops import LocalModels
from histoapp.models.registry import ModelRegistry
from histoapp.settings import Settings
from histoapp.ui.tabs import predict as tab
from tests.histoapp.ui.test_predict_tab import _run, ctx, patches  # noqa: F401 (fixtures)

LINE = re.compile(r"\*\*Faithfulness [+-]\d\.\d\d\*\* \(ROAD\): removing the 20 % the map marks (drops|raises) P\(")


def test_the_score_appears_under_the_cnn_map_on_demand(ctx, patches):  # noqa: F811
    out = _run(ctx, [patches[2]])
    assert "not checked yet" in out["cnn_faith"] and out["vlm_faith"] == ""  # a plain prediction scores nothing
    session = out["session"]
    checked = tab.check_shown_maps(ctx, session, "Grad-CAM")
    assert checked["errors"] == "" and LINE.search(checked["cnn_faith"]), checked["cnn_faith"]
    f = session.items[0].map_score("cnn")
    assert f.method == "Grad-CAM" and -0.5 <= f.road_combined <= 0.5
    # Annotate draws and scores the same map of the same patch alike: a rating stores the score Predict showed.
    key = ctx.registry.list("cnn")[0].key
    _, again = map_checks.map_with_score(ctx, key, "cnn", session.items[0].image, "Grad-CAM")
    assert again.road_combined == f.road_combined and again.sentence() == f.sentence()
    # Another method is another map: its score is not the old one's.
    again = tab.re_explain(ctx, session, "Eigen-CAM", tab.PREDICTED_CLASS, 0.5)
    assert "not checked yet" in again["cnn_faith"]
    assert LINE.search(tab.check_shown_maps(ctx, session, "Eigen-CAM")["cnn_faith"])
    assert session.items[0].map_score("cnn").method == "Eigen-CAM"


def test_the_score_appears_under_the_vlm_map(tmp_path, trained_run, vlm_run, patches):  # noqa: F811
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "tinyvlm").symlink_to(vlm_run / "tinyvlm")
    settings = Settings(runs_dir=runs, data_dir=tmp_path / "data")
    registry = ModelRegistry(settings, assets_dir=tmp_path / "none", hub_models=[])
    vctx = SimpleNamespace(settings=settings, registry=registry, models=LocalModels(registry))
    _, vlm_key = runner.model_choices(vctx, "vlm")
    out = tab.analyze(vctx, [patches[2]], "40X", "", vlm_key, "Grad-CAM", tab.PREDICTED_CLASS, 0.5)
    item = out["session"].items[0]
    checked = tab.check_shown_maps(vctx, out["session"], "Grad-CAM")
    assert checked["errors"] == ""
    if item.vlm.abstain:  # the tiny VLM may abstain: its map explains nothing, so there is nothing to score
        assert checked["vlm_faith"] == "" and item.map_score("vlm") is None
    else:
        assert LINE.search(checked["vlm_faith"]) and item.map_score("vlm").method == "attention"


def test_a_method_that_fails_both_checks_is_marked_in_the_picker(tmp_path):
    root = tmp_path / "explain" / "demo"
    root.mkdir(parents=True)
    rows = [
        {"model": "demo-cnn", "method": "Grad-CAM", "road_combined_low": 0.05, "sanity_final": 0.1},
        {"model": "demo-cnn", "method": "Score-CAM", "road_combined_low": -0.02, "sanity_final": 0.9},
        {"model": "other-cnn", "method": "Eigen-CAM", "road_combined_low": -0.1, "sanity_final": 0.9},
    ]
    (root / "explain_eval.json").write_text(json.dumps({"rows": rows, "command": "python -m trainer explain-eval"}))
    (root / "notes.json").write_text("{}")  # not a table: ignored
    verdicts = explain_eval.verdicts_for({"demo-cnn", "demo:demo-cnn"}, root=root.parent)
    methods = ["Grad-CAM", "Grad-CAM++", "Score-CAM", "Eigen-CAM"]
    assert explain_eval.marked(methods, verdicts) == [
        ("Grad-CAM", "Grad-CAM"),
        ("Grad-CAM++", "Grad-CAM++"),
        ("Score-CAM (failed faithfulness and sanity checks)", "Score-CAM"),
        ("Eigen-CAM", "Eigen-CAM"),  # failed both, but for another model
    ]
    assert explain_eval.verdicts_for({"unmeasured"}, root=root.parent) == {}
    # A run's checkpoint folder is "best" in the table: its path says which model it is.
    rows.append({"model": "best", "path": str(tmp_path / "run/best"), "method": "Eigen-CAM", "road_combined_low": -1})
    rows[-1]["sanity_final"] = 0.8
    (root / "explain_eval.json").write_text(json.dumps({"rows": rows, "command": "python -m trainer explain-eval"}))
    assert explain_eval.verdicts_for(set(), tmp_path / "run/best", root=root.parent)["Eigen-CAM"]["neither"]
    assert explain_eval.verdicts_for(set(), tmp_path / "other/best", root=root.parent) == {}
    assert list(explain_eval.tables(None, root.parent)) == ["results/explain/demo"]
    assert "Made by `python -m trainer explain-eval`" in explain_eval.table_markdown(root / "explain_eval.json")

"""The API endpoints under hostile or oversized input (issue 28): run names that leave the runs folder are
refused, a refused delete says so (never "deleted"), and a batch past the cap says which patches were not
predicted. Called as Gradio calls them (the endpoint functions with every wrapper the app puts around them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import gradio as gr
import pytest

from histoapp.models import uploads
from histoapp.settings import Settings
from histoapp.ui import app
from histoapp.ui.examples import list_examples
from trainer.rundir import RunDir, write_json_atomic


def _endpoint(demo, name):
    return next(f.fn for f in demo.fns.values() if f.api_name == name)


@pytest.fixture
def outside_run(tmp_path):
    """A finished run (one fold's metrics, as the runner writes them) that is NOT in the app's runs folder, and
    the app's settings."""
    outside = tmp_path / "elsewhere" / "secret-run"
    fold = RunDir(outside).fold("resnet18", "all", 0)
    write_json_atomic(
        fold.metrics_file,
        {"model": "resnet18", "magnification": "all", "fold": 0, "metrics": {"accuracy": 0.9, "roc_auc": 0.95}},
    )
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", hub_models=[], model_worker=False)
    settings.runs_dir.mkdir()
    return outside, settings


def test_export_results_refuses_run_names_outside_the_runs_folder(outside_run):
    """``../`` made the Dashboard's summary read (and export) any folder's results."""
    outside, settings = outside_run
    demo, ctx = app.build(settings)
    export = _endpoint(demo, "export_results")
    for name in (os.path.relpath(outside, settings.runs_dir), str(outside), "..", ".exports"):
        with pytest.raises(gr.Error, match="no run named"):
            export([name])
    shutil.copytree(outside, settings.runs_dir / "secret-run")  # the same run inside the folder exports
    assert "resnet18" in Path(export(["secret-run"]).path).read_text()


def test_a_refused_delete_says_why_and_leaves_the_run(outside_run):
    """A refused ``delete_run`` answered ``{"state": "deleted"}``."""
    outside, settings = outside_run
    demo, ctx = app.build(settings)
    delete = _endpoint(demo, "delete_run")
    with pytest.raises(gr.Error, match="delete refused: no run named"):
        delete(os.path.relpath(outside, settings.runs_dir))
    with pytest.raises(gr.Error, match="delete refused: no run named 'nope'"):
        delete("nope")
    assert (outside / "resnet18").is_dir()
    shutil.copytree(outside, settings.runs_dir / "mine")
    assert delete("mine")["state"] == "deleted" and not (settings.runs_dir / "mine").exists()


def test_predict_batch_answers_every_patch_and_says_which_were_not_predicted(monkeypatch, outside_run):
    """Patches past the cap (``MAX_BATCH``, 200; 2 here, so the test stays small) were dropped silently."""
    _, settings = outside_run
    monkeypatch.setattr(uploads, "MAX_BATCH", 2)
    demo, ctx = app.build(settings)
    paths = [e["path"] for e in list_examples()[:3]]
    try:
        answers = _endpoint(demo, "predict_batch")([{"path": str(p)} for p in paths])
    finally:
        ctx.models.close()
    assert [a["name"] for a in answers] == [os.path.basename(p) for p in paths]
    # Predicted (a label, or the abstention's reason: the bundled 14210 tile sits in the CNN's uncertain band).
    assert all(not a["error"] and (a["cnn"]["label"] or a["cnn"]["abstain_reason"]) for a in answers[:2])
    assert answers[2]["cnn"] is None and answers[2]["error"].startswith("not predicted: at most 2 patches per call")

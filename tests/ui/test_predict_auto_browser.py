"""Predict's Auto in a real browser (issue 25 item 5): with the demo CNN and a BreakHis 100X run on the server, a
BreakHis 100X field is answered by the run and an IDC patch by the demo, and each result says which model answered
and why."""

from __future__ import annotations

import json

import pytest

from histoapp.settings import Settings
from histoapp.ui.examples import list_examples

pytestmark = pytest.mark.browser
TIMEOUT = 120_000


def _breakhis_run(runs):
    """A finished fold of a CNN run recorded as trained on BreakHis 100X fields (untrained weights: only which model
    answers is checked here, not what it says)."""
    import torch

    from trainer.config import ModelConfig
    from trainer.models.cnn import CNNAdapter

    torch.manual_seed(0)
    fold = runs / "bh100x" / "resnet18" / "100X" / "fold0"
    CNNAdapter(ModelConfig(family="cnn", name="resnet18", pretrained=False)).save(fold / "best")
    facts = {"input_size": 64, "classes": ["benign", "malignant"], "fold": 0, "dataset": "breakhis"}
    (fold / "best" / "engine.json").write_text(json.dumps(facts | {"magnification": "100X", "image_size": [700, 460]}))
    (fold / "metrics.json").write_text(
        json.dumps({"model": "resnet18", "magnification": "100X", "fold": 0, "metrics": {"roc_auc": 0.7}})
    )


def _answered_by(page, path) -> tuple[str, str]:
    page.locator("#predict-files button[aria-label='Clear']").first.click()
    # The clear re-renders an empty result: wait for it, or the previous image's answer would pass the wait below.
    page.wait_for_function(
        "() => !/P\\(malignant\\)/.test(document.querySelector('#predict-cnn-info').innerText)", timeout=TIMEOUT
    )
    page.locator("#predict-files input[type=file]").set_input_files(path)
    page.wait_for_function(
        "() => /P\\(malignant\\)/.test(document.querySelector('#predict-cnn-info').innerText)", timeout=TIMEOUT
    )
    return page.locator("#predict-cnn-title").inner_text(), page.locator("#predict-cnn-info").inner_text()


def test_auto_answers_each_image_with_the_model_of_its_domain(serve_app, page, tmp_path):
    _breakhis_run(tmp_path / "runs")
    page.goto(serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")))
    page.get_by_role("tab", name="Predict").wait_for()
    assert page.locator("#predict-cnn input").input_value().startswith("Auto")  # the default with two CNNs
    field = next(e["path"] for e in list_examples() if e["magnification"] == "100X")
    patch = next(e["path"] for e in list_examples() if e["dataset"] == "idc")
    page.locator("#predict-files input[type=file]").set_input_files(field)
    page.wait_for_function(
        "() => /P\\(malignant\\)/.test(document.querySelector('#predict-cnn-info').innerText)", timeout=TIMEOUT
    )
    title, info = page.locator("#predict-cnn-title").inner_text(), page.locator("#predict-cnn-info").inner_text()
    assert "bh100x" in title and "Auto picked bh100x" in info and "tagged 100X" in info, (title, info)
    title, info = _answered_by(page, patch)
    assert "demo-cnn" in title and "Auto picked demo-cnn" in info and "tagged 40X" in info, (title, info)

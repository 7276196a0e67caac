"""Auto (issue 25 item 5): for each image, Predict picks the model trained nearest it, by magnification tag and
scale, and says which model answered and why; the tab, its CSV and the API carry the pick per image."""

from __future__ import annotations

import csv
import json
import shutil
from types import SimpleNamespace

import pytest
from PIL import Image

from histoapp.models import routing, runner
from histoapp.models.ops import LocalModels
from histoapp.models.registry import ModelRegistry
from histoapp.settings import Settings

IDC = {"dataset": "idc", "magnification": "40X", "image_size": [50, 50]}
BREAKHIS = {"dataset": "breakhis", "magnification": "100X", "image_size": [700, 460]}


def _ctx(tmp_path, trained_run, domains: dict[str, dict], aucs: dict[str, float] | None = None):
    """A registry of the tiny run's CNN copied once per ``domains`` entry (run name -> its engine.json facts), with
    the fold's test ROC-AUC of ``aucs`` (run name -> AUC) where given."""
    runs = tmp_path / "runs"
    for name, facts in domains.items():
        shutil.copytree(trained_run / "tiny", runs / name)
        fold = runs / name / "resnet18" / "all" / "fold0"
        engine = fold / "best" / "engine.json"
        engine.write_text(json.dumps(json.loads(engine.read_text()) | facts))
        if name in (aucs or {}):
            metrics = json.loads((fold / "metrics.json").read_text())
            metrics["metrics"]["roc_auc"] = aucs[name]
            (fold / "metrics.json").write_text(json.dumps(metrics))
    settings = Settings(runs_dir=runs, data_dir=tmp_path / "data")
    registry = ModelRegistry(settings, assets_dir=tmp_path / "none", hub_models=[])
    return SimpleNamespace(settings=settings, registry=registry, models=LocalModels(registry))


def _key(name: str) -> str:
    return f"run:{name}/resnet18/all/fold0"


@pytest.fixture
def two(tmp_path, trained_run):
    return _ctx(tmp_path, trained_run, {"idc_like": IDC, "breakhis_like": BREAKHIS})


def test_each_image_goes_to_the_model_of_its_magnification_and_scale(two):
    reg = two.registry
    assert routing.offered(reg.list("cnn")) and not routing.offered(reg.list("vlm"))
    key, why = routing.Router(reg, "cnn").pick((50, 50), "40X")
    assert key == _key("idc_like") and "fits this image (50x50 px, tagged 40X)" in why
    key, why = routing.Router(reg, "cnn").pick((700, 460), "100X")
    assert key == _key("breakhis_like") and "BreakHis images of 700x460 px at 100X" in why
    assert routing.Router(reg, "cnn").pick((700, 460), None)[0] == _key("breakhis_like")  # by scale alone
    assert routing.Router(reg, "cnn").pick((50, 50), None)[0] == _key("idc_like")
    # A 100X tag on a 50 px patch: the BreakHis model matches the tag, the IDC one the scale; one misfit each, and
    # the model trained at exactly the tagged magnification wins the tie.
    key, why = routing.Router(reg, "cnn").pick((50, 50), "100X")
    assert key == _key("breakhis_like") and "none of them was trained on images like it" in why


def test_among_equal_fits_the_fold_with_the_best_test_auc(tmp_path, trained_run):
    ctx = _ctx(tmp_path, trained_run, {"bh_a": BREAKHIS, "bh_b": BREAKHIS, "idc": IDC}, {"bh_a": 0.6, "bh_b": 0.8})
    assert routing.Router(ctx.registry, "cnn").pick((700, 460), "100X")[0] == _key("bh_b")
    assert routing.Router(ctx.registry, "cnn").pick((50, 50), "40X")[0] == _key("idc")


def test_one_model_is_no_choice(tmp_path, trained_run):
    ctx = _ctx(tmp_path, trained_run, {"idc_like": IDC})
    assert not routing.offered(ctx.registry.list("cnn"))
    choices, default = runner.model_choices(ctx, "cnn", auto=True)
    assert default == _key("idc_like") and routing.AUTO not in [k for _, k in choices]
    key, why = routing.Router(ctx.registry, "cnn").pick((700, 460), "100X")
    assert key == _key("idc_like") and "the only CNN trained here" in why


def _upload(folder, name: str, size: tuple[int, int], source) -> str:
    path = folder / name
    Image.open(source).convert("RGB").resize(size).save(path)
    return str(path)


def test_predict_tab_auto_answers_a_batch_with_two_models_and_says_which(two, tmp_path, synthetic_records):
    from histoapp.ui.tabs import predict as tab

    choices, default = runner.model_choices(two, "cnn", auto=True)
    assert default == routing.AUTO and choices[0] == (routing.AUTO_LABEL, routing.AUTO)
    assert runner.model_choices(two, "cnn")[1] != routing.AUTO  # the Slide tab scores with one model: no Auto
    up = tmp_path / "up"
    up.mkdir()
    src = synthetic_records[0].path
    files = [_upload(up, "field_100X_a.png", (700, 460), src), _upload(up, "patch_40X_b.png", (50, 50), src)]
    out = tab.analyze(two, files, None, routing.AUTO, "", "Grad-CAM", tab.PREDICTED_CLASS, 0.5)
    session = out["session"]
    assert out["errors"] == ""
    field, patch = session.items
    assert field.keys["cnn"] == _key("breakhis_like") and patch.keys["cnn"] == _key("idc_like")
    assert field.cnn is not None and patch.cnn is not None
    # The shown item (the first) names the model that answered it and why it was picked.
    assert "breakhis_like" in out["cnn_title"] and "🧭 Auto picked" in out["cnn_info"]
    assert "tagged 100X" in out["cnn_info"]
    with open(out["csv"]["value"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["cnn_model"] for r in rows] == [_key("breakhis_like"), _key("idc_like")]
    # Showing the other patch explains it with its own model.
    nxt = tab.show_item(two, session, patch.name, "Grad-CAM", tab.PREDICTED_CLASS, 0.5)
    assert "idc_like" in nxt["cnn_title"] and nxt["cnn_img"] is not None
    # A model named by the user is used for every image, with no Auto note.
    out = tab.analyze(two, files, None, _key("idc_like"), "", "Grad-CAM", tab.PREDICTED_CLASS, 0.5)
    assert {it.keys["cnn"] for it in out["session"].items} == {_key("idc_like")}
    assert "🧭" not in out["cnn_info"] and not out["session"].items[0].routes


def test_api_answers_say_which_model_answered_and_why(two, tmp_path, synthetic_records):
    from histoapp.ui import api

    up = tmp_path / "up"
    up.mkdir()
    src = synthetic_records[0].path
    files = [_upload(up, "field_100X_a.png", (700, 460), src), _upload(up, "patch_40X_b.png", (50, 50), src)]
    answers = api.predict_batch(two, files, vlm="")  # cnn: the default, Auto here
    assert [a["cnn"]["route"].split(" / ")[0] for a in answers] == ["Auto picked breakhis_like", "Auto picked idc_like"]
    assert "BreakHis images" in answers[0]["cnn"]["trained_on"]
    named = api.predict_batch(two, files, cnn=_key("idc_like"), vlm="")
    assert all(a["cnn"]["route"] is None for a in named)

"""The Annotate tab's map rating (issue 27) without a browser: show a map (the model call faked), its score hidden
in blind mode, a rating saved with the map's model, method and score, refused for a map of another image, undone
by the tab's Undo."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from histoapp.settings import Settings
from histoapp.store import open_store
from histoapp.ui import annotate_rating as rating
from histoapp.ui.tabs import annotate as tab


@dataclass
class FakeScore:
    road_combined: float = 0.41

    def sentence(self) -> str:
        return "removing the 20 % the map marks drops P(malignant) by 0.41"


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    from trainer.data.synthetic import generate

    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    root = generate(tmp_path / "p", patients_per_subtype=1, images_per_magnification=1, size=40, seed=2)
    for path in sorted(root.rglob("*-40-*.png"))[:2]:
        store.add_image(path, dataset="breakhis", magnification="40X")
    calls = []

    def map_with_score(ctx, key, family, image, method):
        calls.append((key, family, method))
        pred = SimpleNamespace(
            abstain=None, model=f"{key} model", explanation=SimpleNamespace(heatmap=np.ones((40, 40)))
        )
        return pred, FakeScore()

    monkeypatch.setattr("histoapp.models.map_checks.map_with_score", map_with_score)
    registry = SimpleNamespace(
        default_key=lambda family: f"demo-{family}", get=lambda key: (_ for _ in ()).throw(KeyError(key))
    )
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")
    yield SimpleNamespace(store=store, settings=settings, registry=registry, calls=calls)
    store.close()


def _view(current, **kw):
    return tab.View(name="ann", current=current, **kw)


def test_show_map_scores_it_and_blind_mode_hides_the_score(ctx):
    cur = tab.show_next(ctx, _view(None), None)["view"].current
    out = rating.show_map(ctx, "cnn|Score-CAM", _view(cur), None)
    assert ctx.calls == [("demo-cnn", "cnn", "Score-CAM")]
    assert out["map_img"] is not None and out["shown"].faithfulness == pytest.approx(0.41)
    assert "Faithfulness +0.41" in out["map_info"] and "drops P(malignant) by 0.41" in out["map_info"]
    blind = rating.show_map(ctx, "vlm|attention", _view(cur, blind=True), None)
    assert ctx.calls[-1] == ("demo-vlm", "vlm", "attention")
    assert "0.41" not in blind["map_info"] and "hidden while you rate" in blind["map_info"]
    # Switching blind mode re-captions the map on screen.
    assert "0.41" not in rating.recaption(ctx, out["shown"], _view(cur, blind=True), None)["map_info"]
    assert "0.41" in rating.recaption(ctx, out["shown"], _view(cur), None)["map_info"]


def test_rating_is_saved_with_the_map_and_undone_by_the_tab_s_undo(ctx):
    cur = tab.show_next(ctx, _view(None), None)["view"].current
    shown = rating.show_map(ctx, "cnn|Grad-CAM", _view(cur, blind=True), None)["shown"]
    out = rating.save_rating(ctx, 4, "on the tumour nests", shown, "click-1", _view(cur, blind=True), None)
    assert f"**4/5** of the Grad-CAM map of image #{cur}" in out["rate_status"]
    (row,) = ctx.store.map_ratings()
    assert (row["rater"], row["model"], row["method"], row["rating"]) == ("ann", "demo-cnn", "Grad-CAM", 4)
    assert row["faithfulness"] == pytest.approx(0.41)  # stored even though blind mode hid it
    again = rating.save_rating(ctx, 4, "on the tumour nests", shown, "click-1", _view(cur), None)
    assert "(already saved)" in again["rate_status"] and len(ctx.store.map_ratings()) == 1
    undone = tab.undo_redo(ctx, "undo", _view(cur), None)
    assert "removed the map rating" in undone["status"] and ctx.store.map_ratings() == []
    redone = tab.undo_redo(ctx, "redo", _view(cur), None)
    assert "map rating is now **4/5** (Grad-CAM)" in redone["status"]


def test_a_rating_needs_the_map_of_the_image_on_screen(ctx):
    first = tab.show_next(ctx, _view(None), None)["view"].current
    shown = rating.show_map(ctx, "cnn|Grad-CAM", _view(first), None)["shown"]
    other = tab.show_next(ctx, _view(first), None)["view"].current
    assert other != first
    for stale in (None, shown):
        out = rating.save_rating(ctx, 3, "", stale, "", _view(other), None)
        assert "show a map of the image on screen first" in out["rate_status"]
    out = rating.save_rating(ctx, None, "", shown, "", _view(first), None)
    assert "Not saved: a map's rating is a whole number from 1 to 5" in out["rate_status"]
    assert ctx.store.map_ratings() == []


def test_the_map_is_drawn_by_the_model_whose_prediction_was_sent_with_the_image(ctx):
    cur = tab.show_next(ctx, _view(None), None)["view"].current
    ctx.store.add_prediction(cur, model="run:tiny/resnet18/all/fold0", prob_malignant=0.9, label=1, kind="cnn")
    entries = {"run:tiny/resnet18/all/fold0": SimpleNamespace(available=True)}

    def get(key):
        return entries[key]

    ctx.registry.get = get
    out = rating.show_map(ctx, "cnn|Grad-CAM", _view(cur), None)
    assert ctx.calls[-1] == ("run:tiny/resnet18/all/fold0", "cnn", "Grad-CAM") and out["shown"].model.startswith("run:")
    entries["run:tiny/resnet18/all/fold0"].available = False  # gone since: the app's default draws it
    rating.show_map(ctx, "cnn|Grad-CAM", _view(cur), None)
    assert ctx.calls[-1] == ("demo-cnn", "cnn", "Grad-CAM")
    rating.show_map(ctx, "vlm|attention", _view(cur), None)  # no VLM prediction stored: the default VLM
    assert ctx.calls[-1] == ("demo-vlm", "vlm", "attention")

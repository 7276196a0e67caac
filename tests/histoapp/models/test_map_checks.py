"""The runner's map checks (issue 27) without models: which model operations run, with what, and when none do.
A plain prediction makes no faithfulness call; checking scores each shown map once, with the CNN's method and
the VLM's attention, and keeps the score with the map it measured."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from histoapp.models import map_checks, runner
from histoapp.models.uploads import Item


@dataclass
class FakeScore:
    road_combined: float

    def sentence(self) -> str:
        return f"drops it by {self.road_combined}"


class FakeModels:
    """``ctx.models``: records each operation; explains with a fresh map each time; scores by the map's mean."""

    def __init__(self, abstain=False, fail=None):
        self.calls, self.abstain, self.fail = [], abstain, fail

    def call(self, op, key, *args):
        self.calls.append((op, key, *args))
        if op == self.fail:
            raise RuntimeError("out of memory")
        if op == "faithfulness":
            image, heatmap, method, target = args
            return FakeScore(float(heatmap.mean()))
        images = args[0]
        explained = op.startswith("explain")
        return [
            SimpleNamespace(
                label="malignant",
                prob_malignant=0.8,
                latency_ms=1.0,
                abstain="ood" if self.abstain else None,
                abstain_reason="out of distribution" if self.abstain else None,
                model=key,
                explanation=SimpleNamespace(heatmap=np.full((4, 4), 0.25), target=1) if explained else None,
            )
            for _ in images
        ]


@pytest.fixture
def ctx():
    batcher = SimpleNamespace(map=lambda group, fn, images: fn(images))
    return SimpleNamespace(settings=None, registry=SimpleNamespace(batcher=batcher), models=FakeModels())


KEYS = {"cnn": "cnn-key", "vlm": "vlm-key"}


def _item():
    return Item("p.png", image=Image.new("RGB", (4, 4)))


def test_a_plain_prediction_makes_no_faithfulness_call(ctx):
    item = _item()
    runner.predict_items(ctx, [item], KEYS)
    assert [c[0] for c in ctx.models.calls] == ["classify", "classify"]
    assert item.map_score("cnn") is None


def test_checking_scores_each_shown_map_once_with_its_method(ctx):
    item = _item()
    runner.predict_items(ctx, [item], KEYS, explain=True)
    errors = []
    map_checks.check_maps(ctx, item, KEYS, "Score-CAM", errors)
    scored = [c for c in ctx.models.calls if c[0] == "faithfulness"]
    assert [(c[1], c[4]) for c in scored] == [("cnn-key", "Score-CAM"), ("vlm-key", "attention")]
    assert scored[0][2] is item.image and scored[0][3] is item.cnn.explanation.heatmap
    assert item.map_score("cnn").road_combined == pytest.approx(0.25) and errors == []
    map_checks.check_maps(ctx, item, KEYS, "Score-CAM", errors)  # already scored: no second call
    assert len([c for c in ctx.models.calls if c[0] == "faithfulness"]) == 2
    # A new map (another method) has no score until it is checked: a score belongs to the map it measured.
    runner.explain_cnn(ctx, item, "cnn-key", "Grad-CAM", None, errors)
    assert item.map_score("cnn") is None and item.map_score("vlm") is not None


def test_an_abstaining_model_s_map_is_not_scored_and_a_failure_is_a_line(ctx):
    ctx.models = FakeModels(abstain=True)
    item = _item()
    runner.predict_items(ctx, [item], KEYS, explain=True)
    map_checks.check_maps(ctx, item, KEYS, "Grad-CAM", [])
    assert not [c for c in ctx.models.calls if c[0] == "faithfulness"]
    ctx.models = FakeModels(fail="faithfulness")
    runner.predict_items(ctx, [item], KEYS, explain=True)
    errors = []
    map_checks.check_maps(ctx, item, KEYS, "Grad-CAM", errors)
    assert errors == [
        "CNN map check failed for `p.png`: RuntimeError: out of memory",
        "VLM map check failed for `p.png`: RuntimeError: out of memory",
    ]
    assert item.map_score("cnn") is None


def test_map_with_score_draws_then_scores_one_map(ctx):
    image = Image.new("RGB", (4, 4))
    pred, score = map_checks.map_with_score(ctx, "vlm-key", "vlm", image, "ignored")
    assert [c[0] for c in ctx.models.calls] == ["explain_vlm", "faithfulness"]
    assert ctx.models.calls[1][4] == "attention" and score.road_combined == pytest.approx(0.25)
    ctx.models = FakeModels(abstain=True)
    pred, score = map_checks.map_with_score(ctx, "cnn-key", "cnn", image, "Eigen-CAM")
    assert score is None and [c[0] for c in ctx.models.calls] == ["explain_cnn"]
    assert ctx.models.calls[0][3] == "Eigen-CAM"

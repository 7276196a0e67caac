from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from histoapp.explain.overlay import overlay
from histoapp.models.inference import add_answer, explain_many
from histoapp.models.registry import ModelRegistry
from histoapp.settings import Settings
from trainer.explain.base import explainer_for
from trainer.explain.vlm_attention import AttentionExplainer


@pytest.fixture(scope="module")
def loaded_vlm(tmp_path_factory, vlm_run):
    tmp = tmp_path_factory.mktemp("vlmreg")
    reg = ModelRegistry(Settings(runs_dir=vlm_run, data_dir=tmp / "data"), assets_dir=tmp / "none", hub_models=[])
    (entry,) = reg.list("vlm")
    assert entry.key == "run:tinyvlm/tiny-lora/all/fold0"
    return reg.load(entry.key)


@pytest.fixture
def patch():
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))


def test_vlm_map_is_produced_for_the_tiny_model_at_the_images_size(loaded_vlm, patch):
    explainer = explainer_for(loaded_vlm)
    assert isinstance(explainer, AttentionExplainer)
    (exp,) = explainer.explain_many([patch])
    amap = exp.heatmap
    assert amap.shape == (40, 56) and amap.dtype == np.float32
    assert amap.min() >= 0.0 and amap.max() <= 1.0 and amap.std() > 0
    assert exp.target is None and abs(exp.probs.sum() - 1) < 1e-6
    assert overlay(patch, amap, 0.6).size == patch.size


def test_vlm_prediction_with_attention_and_answer(loaded_vlm, patch):
    (pred,) = explain_many(loaded_vlm, [patch])
    pred = add_answer(loaded_vlm, pred, patch)
    assert pred.classes == ["benign", "malignant"] and abs(sum(pred.probs) - 1) < 1e-4
    assert pred.explanation.heatmap.shape == (40, 56) and isinstance(pred.answer, str)
    assert pred.latency_ms > 0 and "answer_ms" in pred.extra and pred.model == loaded_vlm.entry.name


def test_a_cnn_has_no_attention_map(patch):
    from trainer.config import ModelConfig
    from trainer.models.cnn import CNNAdapter

    cnn = CNNAdapter(ModelConfig(name="resnet18", pretrained=False))
    with pytest.raises(TypeError, match="not a vision-language model adapter"):
        AttentionExplainer(SimpleNamespace(adapter=cnn)).explain_many([patch])

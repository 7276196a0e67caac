"""Cascading randomisation (trainer.explain.sanity): a map that ignores the weights (an edge detector) is flagged,
a map that comes from them (Grad-CAM) is not; the trained model is never touched; the VLM path runs."""

import numpy as np
import pytest
import torch

from tests.trainer.explain.conftest import textured
from trainer.explain.baselines import sobel
from trainer.explain.report import SANE_MAX, verdicts
from trainer.explain.sanity import cascade, randomised_models, sanity_check, spearman


@pytest.fixture(scope="module")
def cnn():
    from trainer.config import ModelConfig
    from trainer.models import Checkpoint
    from trainer.models.cnn import CNNAdapter

    torch.manual_seed(0)
    adapter = CNNAdapter(ModelConfig(family="cnn", name="resnet18", pretrained=False))
    adapter.module.eval()
    return Checkpoint.of(adapter, meta={"classes": ["benign", "malignant"], "input_size": 64})


def gradcam(model, images):
    from trainer.explain.base import explainer_for

    return [e.heatmap for e in explainer_for(model).explain_many(images, method="Grad-CAM", target=1)]


def test_the_layers_run_from_the_top(cnn):
    assert [n for n, _ in cascade(cnn)] == ["fc", "layer4", "layer3", "layer2", "layer1", "bn1", "conv1"]


def test_an_edge_detector_is_flagged_and_grad_cam_is_not(cnn):
    images = textured(4, size=64, seed=3)
    before = {k: v.clone() for k, v in cnn.adapter.module.state_dict().items()}
    edges = sanity_check(cnn, images, lambda m, ims: sobel(ims), method="Sobel edges")
    assert edges.final == pytest.approx(1.0) and not verdicts({"sanity_final": edges.final})["sane"]
    trained = gradcam(cnn, images)
    assert all(m.std() > 0 for m in trained)  # a constant map would pass for the wrong reason
    cam = sanity_check(cnn, images, gradcam, method="Grad-CAM", trained=trained)
    assert cam.layers == [n for n, _ in cascade(cnn)] and len(cam.spearman) == 7 and len(cam.spearman[0]) == 4
    assert cam.final < SANE_MAX and verdicts({"sanity_final": cam.final})["sane"]
    after = cnn.adapter.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the trained model is untouched


def test_randomising_changes_every_tensor_of_the_layer_and_keeps_its_scale(cnn):
    (name, model), *_ = randomised_models(cnn, layers=1)
    assert name == "fc"
    trained, random = cnn.adapter.module.fc.weight, model.adapter.module.fc.weight
    assert not torch.allclose(trained, random)
    assert float(random.detach().std()) == pytest.approx(float(trained.detach().std()), rel=0.2)
    assert torch.equal(cnn.adapter.module.layer4[0].conv1.weight, model.adapter.module.layer4[0].conv1.weight)


def test_spearman_of_maps():
    a = np.arange(16, dtype=float).reshape(4, 4)
    assert spearman(a, a) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.zeros_like(a)) == 0.0


def test_the_vlm_cascade_and_its_attention_check(tiny_vlm_model):
    from trainer.explain.base import explainer_for

    names = [n for n, _ in cascade(tiny_vlm_model)]
    assert names[0] == "lm_head" and names[1].endswith("text_model.layers.1") and names[2].endswith("layers.0")
    assert any("vision" in n for n in names)

    def attention(model, images):
        return [e.heatmap for e in explainer_for(model).explain_many(images)]

    check = sanity_check(tiny_vlm_model, textured(2), attention, method="attention", layers=3)
    assert check.layers == names[:3] and np.isfinite(check.median).all()
    # lm_head does not feed the attention of the layers below it: randomising it alone leaves the map as it was.
    assert check.median[0] == pytest.approx(1.0)

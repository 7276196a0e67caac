"""One explanation interface: the loaded model's family picks the explainer; callers pass only its options."""

from types import SimpleNamespace

import numpy as np
import pytest

from histoapp.models.registry import ModelRegistry
from histoapp.settings import Settings
from trainer.explain.base import Explainer, explainer_for
from trainer.explain.cam import CamExplainer


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, trained_run):
    tmp = tmp_path_factory.mktemp("explainer")
    reg = ModelRegistry(Settings(runs_dir=trained_run, data_dir=tmp / "data"), assets_dir=tmp / "none", hub_models=[])
    return reg.load(reg.list("cnn")[0].key)


def test_cnn_explainer_gives_the_same_probabilities_as_a_plain_prediction(loaded, synthetic_records):
    from trainer.data.images import load_rgb
    from trainer.predict import forward
    from trainer.trust.calibration import softmax

    patch = load_rgb(synthetic_records[0].path).resize((72, 72))
    explainer = explainer_for(loaded)
    assert isinstance(explainer, CamExplainer) and isinstance(explainer, Explainer)
    (exp,) = explainer.explain_many([patch], method="Grad-CAM++", target=1)
    assert np.allclose(exp.probs, softmax(forward(loaded, [patch])[0])[0], atol=1e-5)
    assert exp.target == 1 and exp.heatmap.shape == (72, 72)
    assert exp.description == f"Grad-CAM++ for class '{loaded.classes[1]}'"


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="no explanation for model family 'svm'"):
        explainer_for(SimpleNamespace(adapter=SimpleNamespace(family="svm")))


def test_an_explained_prediction_is_the_trainers_prediction_holding_its_explanation(loaded, synthetic_records):
    """One result type from the trainer to the tab: the app's predictions are ``trainer.predict.Prediction``s, an
    explained one holds the ``Explanation`` whose pass its probabilities and trust verdict were judged on."""
    from histoapp.models.inference import classify_many, explain_many
    from trainer.data.images import load_rgb
    from trainer.predict import Prediction

    patches = [load_rgb(r.path).resize((64, 64)) for r in synthetic_records[:3]]
    explained = explain_many(loaded, patches, method="Grad-CAM")
    plain = classify_many(loaded, patches)
    for e, p in zip(explained, plain, strict=True):
        assert type(e) is Prediction and type(p) is Prediction and p.explanation is None
        assert e.explanation.heatmap.shape == (64, 64) and e.explanation.target == int(np.argmax(e.probs_raw))
        assert np.allclose(e.probs_raw, e.explanation.probs, atol=1e-6)
        assert np.allclose(e.probs, p.probs, atol=1e-4) and e.abstain == p.abstain and e.label == p.label
        assert e.model == p.model == loaded.entry.name and e.latency_ms > 0 and p.latency_ms > 0


@pytest.mark.parametrize("family", ["cnn", "vlm"])
def test_a_stain_normalised_model_is_explained_on_the_image_it_classifies(
    family, loaded, tmp_path_factory, vlm_run, synthetic_records
):
    """A checkpoint trained with stain normalisation classifies stain-normalised images; its explanation pass must
    see the same image (it built its transform without the stain step, so its probabilities were another image's)."""
    import dataclasses

    from trainer.data.images import load_rgb
    from trainer.explain.base import explainer_for
    from trainer.predict import eval_transform, forward

    if family == "vlm":
        tmp = tmp_path_factory.mktemp("stainvlm")
        reg = ModelRegistry(Settings(runs_dir=vlm_run, data_dir=tmp / "data"), assets_dir=tmp / "none", hub_models=[])
        base = reg.load(reg.list("vlm")[0].key)
    else:
        base = loaded
    model = dataclasses.replace(base, meta={**base.meta, "stain_normalization": "reinhard"})
    patches = [load_rgb(r.path).resize((64, 64)) for r in synthetic_records[:2]]
    exps = explainer_for(model).explain_many(patches)
    plain = forward(model, patches)[0]  # logits: a saturated softmax would hide another image's answer
    seen, unnormalised = (np.asarray(eval_transform(m)(patches[0])) for m in (model, base))
    assert np.abs(seen - unnormalised).max() > 0.05  # the stain step changes what the model sees
    assert np.allclose([e.logits for e in exps], plain, atol=1e-4)

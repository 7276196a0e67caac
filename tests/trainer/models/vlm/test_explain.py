"""The app's helpers: a free-text answer and the answer position's attention over the image."""

import numpy as np
import pytest
from PIL import Image

from tests.trainer.models.vlm.conftest import FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_map_covers_the_image(make_adapter, patches, family):
    adapter = make_adapter(family, "lora")
    image = patches[0][1].resize((60, 44))  # not square: the map must still match the image
    heat = adapter.attention_map(image)
    assert heat.shape == (44, 60)
    assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    inside = heat[:, 8:52]  # the central 44 x 44 crop the model saw
    assert inside.max() == pytest.approx(1.0) and inside.std() > 0.01
    assert (heat[:, :8] == 0).all() and (heat[:, 52:] == 0).all()
    # The model's attention implementation is restored after the eager pass.
    assert adapter.model.get_base_model().config._attn_implementation != "eager"


def test_attention_map_accepts_arrays_and_refuses_other_input(make_adapter):
    adapter = make_adapter("idefics3", "zero_shot")
    heat = adapter.attention_map(np.full((32, 32, 3), 128, dtype=np.uint8))
    assert heat.shape == (32, 32)
    with pytest.raises(TypeError, match="PIL image"):
        adapter.attention_map("not an image")


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_answer_returns_text(make_adapter, patches, family):
    adapter = make_adapter(family, "full")
    answer = adapter.generate_answer(patches[0][0], max_new_tokens=5)
    assert isinstance(answer, str)
    probs = adapter.predict_image(Image.fromarray(np.asarray(patches[0][0])))
    assert set(probs) == {"benign", "malignant"} and sum(probs.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "family,mode,num_classes",
    [(f, "lora", 2) for f in FAMILIES] + [("idefics3", "full", 8), ("idefics3", "linear_probe", 2)],
)
def test_explain_image_gives_predict_image_probabilities_and_the_attention_map(
    make_adapter, patches, family, mode, num_classes
):
    # One pass serves both where every class word is one token; subtype names (several tokens) and the linear
    # probe take the scoring pass: either way the app shows exactly what predict_image would.
    adapter = make_adapter(family, mode, num_classes=num_classes)
    image = patches[0][1]
    probs, heat = adapter.explain_image(image)
    expected = adapter.predict_image(image)
    assert set(probs) == set(expected)
    for name in expected:
        assert probs[name] == pytest.approx(expected[name], abs=1e-4)
    assert np.array_equal(heat, adapter.attention_map(image))


@pytest.mark.parametrize("family,mode", [(f, "lora") for f in FAMILIES] + [("idefics3", "linear_probe")])
def test_explain_images_gives_each_image_its_single_image_explanation(make_adapter, patches, family, mode):
    # One forward pass for the batch (the app's batcher); views at input_size are one shape, so no row is padded.
    adapter = make_adapter(family, mode)
    adapter.transform(False, 32)
    images = [im.resize(size) for im, size in zip(patches[0], [(60, 44), (48, 48), (40, 56), (48, 48)], strict=True)]
    batch = adapter.explain_images(images)
    assert len(batch) == len(images)
    for image, (probs, heat) in zip(images, batch, strict=True):
        one_probs, one_heat = adapter.explain_image(image)
        assert heat.shape == (image.height, image.width)
        for name in one_probs:
            assert probs[name] == pytest.approx(one_probs[name], abs=1e-4)
        assert np.allclose(heat, one_heat, atol=1e-4)


def test_attention_passes_from_two_threads_each_get_their_weights(make_adapter, patches):
    # The eager switch is per model: a thread switching back mid-pass left the other without attention weights.
    import threading

    adapter = make_adapter("idefics3", "lora")
    image = patches[0][0]
    expected = adapter.attention_map(image)
    errors, maps = [], []

    def work():
        for _ in range(8):
            try:
                maps.append(adapter.attention_map(image))
            except Exception as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(maps) == 16
    assert all(np.allclose(m, expected, atol=1e-5) for m in maps)

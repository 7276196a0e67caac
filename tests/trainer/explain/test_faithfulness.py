"""ROAD faithfulness (trainer.explain.faithfulness): the map that is the model's true evidence scores far better
than a random or an inverted map, for a model built to look at one quadrant; the VLM is scored by the same path."""

import numpy as np
import pytest

from tests.trainer.explain.conftest import SIZE, textured
from trainer.explain.faithfulness import Faithfulness, map_view, ranked, score_map, score_maps


def quadrant_map(size=SIZE):
    m = np.zeros((size, size), dtype=np.float32)
    m[: size // 2, : size // 2] = 1.0
    return m


def test_the_true_evidence_scores_far_better_than_a_random_or_an_inverted_map(quadrant_model):
    images = textured(6)
    rng = np.random.default_rng(1)
    maps = {
        "true": [quadrant_map()] * 6,
        "random": [rng.random((SIZE, SIZE)).astype(np.float32) for _ in images],
        "inverted": [1.0 - quadrant_map()] * 6,
    }
    score = {k: score_maps(quadrant_model, images, v, methods=k, targets=[1] * 6) for k, v in maps.items()}
    road = {k: float(np.mean([s.road_combined for s in v])) for k, v in score.items()}
    assert all(s.p_before > 0.9 for s in score["true"])  # the textured quadrant: malignant
    assert road["true"] > 0.2 and road["true"] > road["random"] + 0.15 and road["true"] > road["inverted"] + 0.3
    assert road["inverted"] < 0
    true = score["true"][0]
    assert true.drop_most > 0.5 and abs(true.drop_least) < 0.05
    assert (
        true.deletion_auc < score["random"][0].deletion_auc and true.insertion_auc > score["inverted"][0].insertion_auc
    )
    assert [s.method for s in score["random"]] == ["random"] * 6 and true.target_class == "malignant"


def test_a_map_at_the_images_own_size_is_brought_to_the_models_view(quadrant_model):
    """The map comes at the image's size (Explanation.heatmap); the model sees the centre crop at its input size."""
    from PIL import Image

    wide = np.zeros((2 * SIZE, 3 * SIZE), dtype=np.float32)  # 96 x 64: the model sees the central 64 x 64
    wide[:SIZE, SIZE // 2 : SIZE // 2 + SIZE] = 1.0  # the top-left quadrant of that crop
    assert np.array_equal(map_view(quadrant_model, wide) > 0.5, quadrant_map() > 0.5)  # up to the resize's blur
    image = textured(1)[0].resize((3 * SIZE, 3 * SIZE), Image.NEAREST)  # 96 px: resized (and smoothed) to 32
    res = score_map(quadrant_model, image, quadrant_map(3 * SIZE), method="true", target=1)
    assert res.drop_most > 0.5 * res.p_before and res.road_combined > 0 and abs(res.drop_least) < 0.01


def test_ranks_remove_the_stated_share_even_from_a_flat_map():
    flat = np.zeros((10, 10), dtype=np.float32)
    flat[0, :3] = 1.0  # 3 % marked, 97 % tied at 0
    r = ranked(flat)
    assert sorted(r.ravel().tolist()) == pytest.approx([(i + 1) / 100 for i in range(100)])
    assert (r[0, :3] > 0.97).all()
    assert np.array_equal(r, ranked(flat)) and not np.array_equal(r, ranked(flat, seed=1))


def test_the_sentence_says_what_the_numbers_mean():
    f = Faithfulness("Grad-CAM", 0.2, 0.9, 0.41, -0.03, 0.2, 0.1)
    assert f.sentence() == (
        "removing the 20 % the map marks drops P(malignant) by 0.41; removing the 20 % it leaves raises it by 0.03"
    )


def test_bad_input_is_refused(quadrant_model):
    with pytest.raises(ValueError, match="2 images but 1 maps"):
        score_maps(quadrant_model, textured(2), [quadrant_map()])
    with pytest.raises(ValueError, match="fraction"):
        score_map(quadrant_model, textured(1)[0], quadrant_map(), fraction=1.0)
    with pytest.raises(ValueError, match="2-D"):
        score_map(quadrant_model, textured(1)[0], np.zeros(5))


def test_the_vlm_is_scored_by_the_apps_scoring(tiny_vlm_model):
    """The VLM has no model(x): its map is scored through trainer.predict, whose calibrated P is p_before."""
    from trainer.explain.base import explainer_for
    from trainer.predict import predict_images

    images = textured(2, size=SIZE)
    exps = explainer_for(tiny_vlm_model).explain_many(images)
    res = score_maps(tiny_vlm_model, images, [e.heatmap for e in exps], methods="attention", targets=[1, 1])
    preds = predict_images(tiny_vlm_model, images)
    for r, p in zip(res, preds, strict=True):
        assert r.p_before == pytest.approx(p.prob_malignant, abs=1e-4)
        assert np.isfinite([r.road_combined, r.drop_most, r.drop_least, r.deletion_auc, r.insertion_auc]).all()
        assert len(r.deletion) == len(r.insertion) == 10

"""trainer.slide.score: every tissue tile through trainer.predict.predict_images (tile i of a mosaic is patch i),
background tiles kept apart, context, progress, stopping and resuming."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.trainer.slide.conftest import EMPTY, SHORT, write_tiff
from trainer.context import neighbour_mean
from trainer.predict import predict_images
from trainer.slide import open_slide, score_slide
from trainer.slide.mosaic import read_patches
from trainer.slide.score import PARTIAL_FILE


@pytest.fixture(scope="module")
def scored(mosaic, demo_cnn):
    with open_slide(mosaic[0]) as slide:
        return score_slide(demo_cnn, slide, batch_size=16)


def test_each_tile_gets_the_prediction_of_its_patch(scored, mosaic, demo_cnn):
    rows = read_patches(mosaic[1])
    preds = predict_images(demo_cnn, [Image.open(r["path"]) for r in rows], batch_size=16)
    by_place = {(t.x, t.y): t for t in scored.tiles}
    for r, p in zip(rows, preds, strict=True):
        t = by_place[(r["x"], r["y"])]
        assert (t.width, t.height) == (r["width"], r["height"])
        assert t.tissue
        assert t.prob_malignant == pytest.approx(p.prob_malignant, abs=1e-5)
        assert t.abstain == p.abstain and t.ood == bool(p.ood)
    assert any(t.height == SHORT for t in scored.tiles)


def test_background_tiles_are_kept_without_a_prediction(scored):
    empty = [t for t in scored.tiles if (t.col, t.row) in EMPTY]
    assert len(empty) == len(EMPTY)
    assert all(not t.tissue and t.prob_malignant is None for t in empty)
    s = scored.summary
    assert s["tiles"] == len(scored.tiles) == s["tissue_tiles"] + s["background_tiles"]
    assert s["background_tiles"] == len(EMPTY) and s["complete"] and scored.complete
    assert s["mpp"] == pytest.approx(4.0) and s["model_mpp"] == 4.0 and s["tile_px"] == 50
    short = sum(t.tissue and t.height == SHORT for t in scored.tiles)
    area = (s["tissue_tiles"] - short) * 50 * 50 + short * 50 * SHORT  # level-0 px at 4 um/px
    assert s["tissue_area_mm2"] == pytest.approx(area * 16e-6, abs=1e-4)


def test_top_k_and_uncertain(scored):
    top = scored.top_k(3)
    assert [t.prob_malignant for t in top] == sorted((t.prob_malignant for t in scored.scored), reverse=True)[:3]
    near = scored.uncertain(2)
    assert abs(near[0].prob_malignant - 0.5) == min(abs(t.prob_malignant - 0.5) for t in scored.scored)


def test_context_is_the_3x3_mean_of_trainer_context(scored, mosaic, demo_cnn):
    with open_slide(mosaic[0]) as slide:
        ctx = score_slide(demo_cnn, slide, context=True)
    tissue = scored.scored
    expected = neighbour_mean(
        ["p"] * len(tissue), [t.x for t in tissue], [t.y for t in tissue], [t.prob_malignant for t in tissue]
    )
    got = {(t.x, t.y): t for t in ctx.scored}
    assert [got[(t.x, t.y)].prob_malignant for t in tissue] == pytest.approx(list(expected), abs=1e-6)
    assert [got[(t.x, t.y)].prob_patch for t in tissue] == pytest.approx([t.prob_malignant for t in tissue], abs=1e-6)
    assert ctx.summary["context"] is True


def test_progress_reaches_the_total(mosaic, demo_cnn):
    calls = []
    with open_slide(mosaic[0]) as slide:
        r = score_slide(demo_cnn, slide, batch_size=8, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, len(r.tiles)) and calls[-1] == (len(r.tiles), len(r.tiles))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_stopped_run_continues_where_it_was(mosaic, demo_cnn, scored, tmp_path):
    batches = []
    with open_slide(mosaic[0]) as slide:
        first = score_slide(demo_cnn, slide, batch_size=8, out_dir=tmp_path, stop=lambda: batches.append(1) or True)
    assert not first.complete and len(first.tiles) == 8 and (tmp_path / PARTIAL_FILE).is_file()
    with open_slide(mosaic[0]) as slide:
        second = score_slide(demo_cnn, slide, batch_size=8, out_dir=tmp_path)
    assert second.complete and second.summary["resumed_tiles"] == 8
    assert [(t.x, t.y, t.tissue) for t in second.tiles] == [(t.x, t.y, t.tissue) for t in scored.tiles]
    a = np.array([t.prob_malignant if t.tissue else -1 for t in second.tiles])
    b = np.array([t.prob_malignant if t.tissue else -1 for t in scored.tiles])
    assert np.allclose(a, b, atol=1e-5)
    # another grid (overlap) does not continue from this file: it starts again
    with open_slide(mosaic[0]) as slide:
        third = score_slide(demo_cnn, slide, batch_size=64, out_dir=tmp_path, overlap=0.5)
    assert third.summary["resumed_tiles"] == 0


def test_a_torn_last_line_is_dropped_on_resume(mosaic, demo_cnn, tmp_path):
    with open_slide(mosaic[0]) as slide:
        score_slide(demo_cnn, slide, batch_size=8, out_dir=tmp_path, stop=lambda: True)
    with open(tmp_path / PARTIAL_FILE, "a") as fh:
        fh.write("9,1,1,50,")  # a killed writer's half line
    with open_slide(mosaic[0]) as slide:
        r = score_slide(demo_cnn, slide, batch_size=8, out_dir=tmp_path)
    assert r.complete and r.summary["resumed_tiles"] == 8


def test_a_slide_with_no_tissue_says_so(tmp_path, demo_cnn):
    glass = np.full((300, 400, 3), 245, np.uint8)
    with open_slide(write_tiff(tmp_path / "glass.tif", glass, mpp=4.0)) as slide:
        r = score_slide(demo_cnn, slide)
    assert r.summary["tissue_tiles"] == 0 and r.summary["background_tiles"] == len(r.tiles) == 48
    assert r.summary["share_malignant"] is None
    assert any("no tissue" in n for n in r.notes)
    assert r.top_k(5) == [] and np.isnan(r.heatmap(64)).all()


def test_a_slide_is_scored_with_one_blas_thread(monkeypatch, mosaic, demo_cnn):
    from threadpoolctl import threadpool_info, threadpool_limits

    import trainer.predict

    seen = []
    real = trainer.predict.predict_images

    def spy(*args, **kwargs):
        seen.append(_blas_threads(threadpool_info))
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer.predict, "predict_images", spy)
    with threadpool_limits(limits=2, user_api="blas"), open_slide(mosaic[0]) as slide:
        result = score_slide(demo_cnn, slide, batch_size=64)
        assert _blas_threads(threadpool_info) == {2}
    assert result.scored and seen and all(s == {1} for s in seen)


def _blas_threads(info) -> set[int]:
    found = {lib["num_threads"] for lib in info() if lib["user_api"] == "blas"}
    if not found:
        pytest.skip("numpy has no BLAS library that threadpoolctl can see")
    return found

"""Real material from ../shared/data (skipped when absent): an IDC patient's mosaic scored end to end matches
``trainer evaluate`` on the same patches (tile i is patch i), without and with context; a full-size BreakHis
field and a UCSB image open and score."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trainer.slide.conftest import DEMO_CNN, SHARED
from trainer.slide import SlideError, open_slide, score_slide

pytestmark = pytest.mark.slow
# A patient the demo CNN (fold 0 of the 211-patient IDC split) never saw, the smallest (the bundled example slide).
HELD_OUT = "8916"


def _need(*parts):
    path = SHARED.joinpath(*parts) if SHARED is not None else None
    if path is None or not path.exists():
        pytest.skip(f"../shared/data/{'/'.join(parts)} is not here")
    return path


def test_mosaic_heatmap_auc_matches_trainer_evaluate(tmp_path, demo_cnn):
    from sklearn.metrics import roc_auc_score

    from trainer.slide.mosaic import compare_with_evaluate

    patient = _need("idc", HELD_OUT)
    got = compare_with_evaluate(demo_cnn, DEMO_CNN, patient, tmp_path)
    for context in (False, True):
        y, tiles, ev = got[context]
        assert len(y) >= 0.85 * got["patches"]  # the rest are background tiles (under 10 % tissue)
        assert np.abs(tiles - ev).max() < 1e-5
        assert roc_auc_score(y, tiles) == pytest.approx(roc_auc_score(y, ev), abs=1e-4)


def test_a_full_size_breakhis_field_opens_and_scores(demo_cnn):
    root = _need("breakhis", "BreaKHis_v1")
    field = next(root.rglob("40X/*.jpg"))
    with pytest.raises(SlideError, match="no scale"):
        open_slide(field)
    with open_slide(field, magnification="40X") as slide:
        assert slide.kind == "plain" and slide.dimensions[0] == 700
        result = score_slide(demo_cnn, slide)
    # 700 px at 0.25 um/px is 175 um: under one 200 um IDC input, so one clipped tile, resized to the IDC scale
    assert len(result.tiles) == 1 and result.tiles[0].width == 700
    assert result.tiles[0].tissue and result.tiles[0].prob_malignant is not None
    # at 100X the field (70 um) is too small for the IDC model: said, not scored as background
    with (
        open_slide(next(root.rglob("100X/*.jpg")), magnification="100X") as slide,
        pytest.raises(SlideError, match="too small for one model input"),
    ):
        score_slide(demo_cnn, slide)


def test_a_ucsb_image_opens_and_scores(demo_cnn):
    image = next(_need("ucsb", "malignant").glob("*.jpg"))
    with open_slide(image, mpp=1.0) as slide:
        assert slide.dimensions == (896, 768)
        result = score_slide(demo_cnn, slide)
    # 896 x 768 px in 200 px tiles: 5 x 4, the last column 96 px wide and the last row 168 px high
    assert result.summary["tiles"] == 20 and result.summary["tile_px"] == 200
    assert result.summary["tissue_tiles"] > 0

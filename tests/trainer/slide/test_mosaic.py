"""trainer.slide.mosaic: an IDC patient's patches rebuilt as a pyramidal TIFF whose tile grid is the patch grid."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.trainer.slide.conftest import COLS, EMPTY, ROWS, SHORT, patch_layout
from trainer.slide import SlideError, open_slide
from trainer.slide.mosaic import read_patches


def test_every_patch_lies_at_its_place_pixel_for_pixel(mosaic):
    tif, table = mosaic
    rows = read_patches(table)
    assert len(rows) == len(patch_layout())
    with open_slide(tif) as slide:
        assert slide.mpp == pytest.approx(4.0) and slide.kind == "generic-tiff"
        # origin at the smallest x, y (1, 51); the bottom row's patches are SHORT px high
        assert slide.dimensions == (COLS * 50, (ROWS - 1) * 50 + SHORT)
        assert slide.level_count >= 1
        for r in rows:
            got = slide.read_region((r["x"], r["y"]), 0, (r["width"], r["height"]))
            assert np.array_equal(np.asarray(got), np.asarray(Image.open(r["path"]).convert("RGB")))
        assert (r["slide_x"] - r["x"], r["slide_y"] - r["y"]) == (1, 51)
        for col, row in EMPTY:
            assert (np.asarray(slide.read_region((col * 50, row * 50), 0, (50, 50))) == 255).all()
    assert {r["height"] for r in rows if r["y"] // 50 == ROWS - 1} == {SHORT}


def test_a_folder_without_idc_patches_is_refused(tmp_path):
    with pytest.raises(SlideError, match="no IDC patches"):
        from trainer.slide.mosaic import build_mosaic

        build_mosaic(tmp_path, tmp_path / "m.tif")


def test_the_mosaics_tiles_score_as_trainer_evaluate_scores_their_patches(patient_dir, demo_cnn, tmp_path):
    from tests.trainer.slide.conftest import DEMO_CNN
    from trainer.slide.mosaic import compare_with_evaluate

    got = compare_with_evaluate(demo_cnn, DEMO_CNN, patient_dir, tmp_path)
    for context in (False, True):
        labels, tiles, evaluated = got[context]
        assert labels and len(labels) <= got["patches"]
        assert np.abs(tiles - evaluated).max() < 1e-5
    labels, probs, smooth = got["all"]
    assert len(labels) == len(probs) == len(smooth) >= len(got[False][0])
    assert not np.allclose(probs, smooth)  # the context is a real 3x3 mean, not the patch's own value

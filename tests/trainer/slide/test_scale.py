"""trainer.slide.scale: what one model input covers, from the model's metadata or its data source's default."""

from __future__ import annotations

import json

import pytest

from tests.trainer.slide.conftest import DEMO_CNN
from trainer.slide import SlideError, model_mpp, model_scale
from trainer.slide.scale import BREAKHIS_MPP_40X, IDC_MPP, scale_meta


def test_the_demo_cnn_states_the_idc_scale_and_the_default_agrees():
    meta = json.loads((DEMO_CNN / "engine.json").read_text())
    s = model_scale(meta)  # the bundled demo's own metadata (its card says the same)
    assert (s.mpp, s.patch_px) == (IDC_MPP, 50) and s.patch_um == pytest.approx(200.0)
    assert s.source == "model metadata"
    bare = {k: v for k, v in meta.items() if k not in ("mpp", "patch_px", "patch_um")}
    d = model_scale(bare)  # without them: the IDC default, the same figures
    assert (d.mpp, d.patch_px) == (IDC_MPP, 50) and "idc" in d.source


def test_metadata_wins_over_the_default():
    s = model_scale({"dataset": "idc", "mpp": 0.5, "patch_px": 224})
    assert (s.mpp, s.patch_px, s.source) == (0.5, 224, "model metadata")
    assert model_scale({"mpp": 2.0, "patch_um": 100.0}).patch_px == 50


def test_breakhis_scales_with_magnification():
    s = model_scale({"dataset": "breakhis", "magnification": "100X", "image_size": [700, 460]})
    assert s.mpp == pytest.approx(BREAKHIS_MPP_40X * 0.4) and s.patch_px == 460
    assert model_scale({"dataset": "breakhis", "magnification": "40X"}).mpp == pytest.approx(0.49)


def test_a_model_with_no_known_scale_is_refused():
    for meta in ({"dataset": "synthetic"}, {"dataset": "breakhis", "magnification": "all"}, {}):
        with pytest.raises(SlideError, match="does not say what its input covers"):
            model_scale(meta)


def test_model_mpp_reads_a_loaded_model(demo_cnn):
    assert model_mpp(demo_cnn) == IDC_MPP


def test_scale_meta_is_what_export_writes():
    assert scale_meta({"dataset": "idc", "image_size": [50, 50]}) == {"mpp": 4.0, "patch_px": 50, "patch_um": 200.0}
    assert scale_meta({"dataset": "synthetic"}) == {}

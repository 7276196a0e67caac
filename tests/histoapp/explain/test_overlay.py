import numpy as np
import pytest
from PIL import Image

from histoapp.explain.overlay import overlay


def test_opacity_blends_between_patch_and_heatmap():
    img = Image.new("RGB", (40, 30), (200, 100, 150))
    heat = np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))
    assert np.array_equal(np.asarray(overlay(img, heat, 0.0)), np.asarray(img))
    full = np.asarray(overlay(img, heat, 1.0)).astype(int)
    half = np.asarray(overlay(img, heat, 0.5)).astype(int)
    assert np.abs(half - (full + np.asarray(img)) / 2).max() <= 1
    assert overlay(img, heat[:10, :10], 0.4).size == (40, 30)  # a coarse map is resized to the patch


def test_bad_inputs_are_refused():
    img = Image.new("RGB", (8, 8))
    with pytest.raises(ValueError):
        overlay(img, np.zeros((8, 8)), 1.5)
    with pytest.raises(ValueError):
        overlay(img, np.zeros((8, 8, 3)), 0.5)

"""The cheap image checks: size, tissue share, H&E colours, on generated patches and hostile images."""

import numpy as np
import pytest

from tests.trainer.trust import hostile
from trainer.data.synthetic import render_patch
from trainer.trust.tissue import WORK_SIDE, check_image


@pytest.mark.parametrize("malignant", [False, True])
def test_an_he_like_patch_is_tissue_with_he_colours(malignant):
    checks = check_image(render_patch(np.random.default_rng(0), 64, malignant, 5 if malignant else 1, "40X"))
    assert checks.tissue_fraction > 0.9 and checks.he_fraction > 0.9 and not checks.too_small


def test_blank_and_grayscale_images_hold_no_tissue():
    for image in (hostile.blank_white(), hostile.text_image()):
        assert check_image(image).tissue_fraction < 0.05


def test_photo_and_noise_are_not_he_coloured():
    assert check_image(hostile.photo_scene()).he_fraction < 0.05
    assert check_image(hostile.random_noise()).he_fraction < 0.5  # uniform hues: about 140 of 360 degrees


def test_size_is_the_original_and_a_big_image_is_checked_on_a_small_copy():
    big = render_patch(np.random.default_rng(1), (700, 460), False, 0, "40X")
    checks = check_image(big)
    assert (checks.width, checks.height) == (700, 460) and WORK_SIDE < 460
    assert check_image(hostile.one_pixel()).too_small
    assert "1x1 px" in check_image(hostile.one_pixel()).too_small_message()


def test_an_enlarged_thumbnail_repeats_its_pixels_and_real_size_patches_do_not():
    thumb = check_image(hostile.upscaled_thumbnail(12, 224))
    assert thumb.repeat_fraction > 0.9 and thumb.source_side < 16
    patch = check_image(render_patch(np.random.default_rng(3), 64, True, 4, "40X"))
    assert patch.repeat_fraction < 0.3 and patch.source_side > 40
    twice = check_image(render_patch(np.random.default_rng(3), 50, True, 4, "40X").resize((100, 100), 0))
    assert twice.repeat_fraction > 0.4 and twice.source_side > 16  # a 50 px patch doubled is still 50 px

"""The cheap image checks: size, tissue share, H&E colours and enlarged thumbnails, on real and generated patches
and hostile images."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.trainer.trust import hostile
from trainer.config import TrustConfig
from trainer.data.images import load_rgb, to_rgb
from trainer.data.synthetic import render_patch
from trainer.trust.abstain import decide
from trainer.trust.tissue import WORK_SIDE, _keys_cubic, check_image

ASSETS = Path(__file__).resolve().parents[3] / "assets"
EXAMPLES = ASSETS / "examples"


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


def enlarged(checks):
    cfg = TrustConfig()
    return checks.enlarged_from(cfg.blocky_fraction, cfg.max_fit_residual)


@pytest.mark.parametrize("side", [4, 8, 12])
def test_a_thumbnail_enlarged_by_any_kernel_is_too_small_and_its_side_is_found(side):
    # thumbnails of two real patches (IDC, benign and malignant), to 50, 64, 224 and 512 px by nearest, bilinear,
    # bicubic and Lanczos: the fit names the thumbnail's side, whatever the kernel
    for patch in (hostile.real_patch(), Image.open(EXAMPLES / "idc_benign_40X_patient12895.png").convert("RGB")):
        for what, image in hostile.enlarged_thumbnails(sides=(side,), patch=patch).items():
            checks = check_image(image)
            assert enlarged(checks) is not None, (what, checks)
            assert checks.fit_side == side and checks.fit_residual < 1e-4, (what, checks)
            why = decide(checks, 0.99, 1.0, 100.0)
            assert why.code == "too_small" and f"thumbnail of about {side} px" in why.message, (what, why)


def test_real_patches_and_their_enlargements_are_not_thumbnails():
    # real IDC patches (the bundled examples and every 20th patch of the quick demo's data), the 8 real BreakHis
    # examples (700x460 JPEGs), and real 50 px patches enlarged to 64 and 224 px: 50 px is not too small
    mini = sorted((ASSETS / "data" / "idc-mini").rglob("*.png"))[::20]
    real = [Image.open(p).convert("RGB") for p in [*sorted(EXAMPLES.glob("*.*g")), *mini]]
    real = [im for im in real if min(im.size) >= 16]
    assert len(real) > 100
    bound = TrustConfig().max_fit_residual
    for image in real:
        checks = check_image(image)
        assert enlarged(checks) is None and checks.fit_residual > 5 * bound, (image.size, checks)
    for image in [im for im in real if im.size == (50, 50)][:6]:
        for size in (64, 224):
            for kernel in hostile.ENLARGE.values():
                checks = check_image(image.resize((size, size), kernel))
                assert enlarged(checks) is None, (size, kernel, checks)


def test_small_real_crops_are_not_taken_for_thumbnails():
    # 16-32 px crops of real patches: the fit tries only thumbnails at most half the image's side
    patch = hostile.real_patch()
    for side in (16, 20, 24, 32):
        checks = check_image(patch.crop((5, 5, 5 + side, 5 + side)))
        assert enlarged(checks) is None and (checks.fit_side or 0) <= side // 2, (side, checks)


def test_a_non_square_image_and_opencv_pytorch_bicubic():
    # a real BreakHis image (700x460) shrunk to 18x12 and enlarged back; and PyTorch's bicubic (a = -0.75)
    image = Image.open(EXAMPLES / "breakhis_malignant_ductal-carcinoma_40X_patient14-2523.jpg").convert("RGB")
    assert image.size == (700, 460) and enlarged(check_image(image)) is None
    back = check_image(image.resize((18, 12), Image.BOX).resize(image.size, Image.BICUBIC))
    assert back.fit_side == 12 and enlarged(back) is not None
    torch = pytest.importorskip("torch")
    thumb = torch.from_numpy(np.asarray(hostile.real_patch().resize((10, 10), Image.BOX), dtype=np.float32))
    big = torch.nn.functional.interpolate(thumb.permute(2, 0, 1)[None], size=(96, 96), mode="bicubic")
    image = Image.fromarray(big[0].permute(1, 2, 0).round().clamp(0, 255).numpy().astype(np.uint8))
    checks = check_image(image)
    assert checks.fit_kernel == "bicubic (OpenCV, PyTorch)" and checks.fit_side == 10 and enlarged(checks)


def test_the_opencv_pytorch_cubic_matrix_is_keys_kernel():
    weights = _keys_cubic(8, 4)
    assert np.allclose(weights.sum(1), 1.0)  # an enlargement keeps a flat image flat
    assert np.allclose(_keys_cubic(4, 4), np.eye(4))  # and the identity at the same size


def test_a_flat_image_carries_no_detail_and_the_bound_comes_from_the_config():
    flat = check_image(Image.new("RGB", (64, 64), (200, 120, 180)))
    assert flat.fit_side == 1 and flat.fit_residual == 0.0
    checks = check_image(hostile.real_patch())
    assert enlarged(checks) is None
    assert checks.enlarged_from(0.5, max_fit_residual=checks.fit_residual) is not None


def test_noise_of_any_colours_palette_or_transparency_is_refused_as_noise():
    """Issue 23: noise saved with transparency (composited on white, as for the model) or as a random palette
    (mostly pink by chance) escaped the colour test; its unrelated neighbouring pixels give it away."""
    for name in ("translucent_noise", "noise_random_alpha", "palette_noise"):
        checks = check_image(getattr(hostile, name)())
        assert abs(checks.neighbour_correlation) < 0.02, name
        assert decide(checks, 0.9) is not None, name
    palette = check_image(hostile.palette_noise(transparent=False))
    assert palette.he_fraction > TrustConfig().min_he_fraction  # its colours alone would pass
    assert decide(palette, 0.9).code == "noise" and "pixel noise" in decide(palette, 0.9).message


def test_real_patches_are_not_noise():
    """The bound (0.05) against the bundled real tissue: 2,160 IDC patches (50 px, the least correlated real
    images) and the BreakHis examples."""
    paths = sorted((ASSETS / "data" / "idc-mini").rglob("*.png")) + sorted(EXAMPLES.glob("*.*"))
    paths = [p for p in paths if p.suffix.lower() in (".png", ".jpg")]
    assert len(paths) > 1000
    lowest = min(check_image(load_rgb(p)).neighbour_correlation for p in paths)
    assert lowest > 2 * TrustConfig().min_neighbour_correlation, lowest


def test_the_checks_see_transparency_composited_as_the_model_does():
    """An RGBA image handed over in memory is composited on white, as reading its file is (``load_rgb``), not
    stripped of its alpha (Pillow's ``convert``): the checks and the model judge what a viewer sees."""
    patch = hostile.transparent_patch()  # a real patch, fully transparent: white to a viewer
    assert check_image(patch).tissue_fraction < 0.01
    assert check_image(patch.convert("RGB")).tissue_fraction > 0.5  # the pixels under the alpha
    assert np.array_equal(np.asarray(to_rgb(patch)), np.full((256, 256, 3), 255, np.uint8))


def test_an_image_checked_again_gets_the_same_checks_without_checking_it_again(monkeypatch):
    # The app judges each patch once per model (CNN and VLM): the second time is a look-up by the pixels.
    from trainer.trust import tissue

    malignant = render_patch(np.random.default_rng(7), 64, True, 5, "40X")
    calls = []
    real = tissue._check
    monkeypatch.setattr(tissue, "_check", lambda *a: calls.append(a) or real(*a))
    first = tissue.check_image(malignant.copy(), 0.05, 0.001)
    assert tissue.check_image(malignant.copy(), 0.05, 0.001) == first and len(calls) == 1
    assert tissue.check_image(malignant.convert("RGBA"), 0.05, 0.001) == first and len(calls) == 1  # same pixels
    other = malignant.copy()
    other.putpixel((0, 0), (0, 0, 0))
    tissue.check_image(other, 0.05, 0.001)
    tissue.check_image(malignant, 0.1, 0.001)  # another bound: checked again
    assert len(calls) == 3

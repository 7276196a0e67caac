"""Issue 13's check on the bundled demo models (whatever ``assets/models`` holds): every decodable hostile kind
(1x1 pixel, blank white, random noise, grayscale text, a photo-like scene, an upscaled thumbnail, by pixel
repetition or smoothly) abstains, with its reason. A demo model without a trust reference is skipped, saying
how to fit one. And issue 16's: predicting in batches gives each image what predicting it alone gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trainer.trust.hostile import KINDS, enlarged_thumbnails
from trainer.rundir import ADAPTER_FILE, TRUST_FILE

DEMO = Path(__file__).resolve().parents[3] / "assets" / "models"
EXAMPLES = DEMO.parent / "examples"
MODELS = sorted(p.name for p in DEMO.glob("*") if (p / ADAPTER_FILE).is_file()) if DEMO.is_dir() else []


@pytest.mark.parametrize("name", MODELS or [pytest.param("none", marks=pytest.mark.skip(reason="no demo models"))])
def test_every_hostile_kind_abstains_with_its_reason(name):
    from trainer.models import load_checkpoint
    from trainer.predict import predict_images

    folder = DEMO / name
    if not (folder / TRUST_FILE).is_file():
        pytest.skip(
            f"assets/models/{name} has no trust reference yet; fit it with `python -m trainer calibrate "
            f"assets/models/{name} --data ../shared/data/idc --splits <its run>/splits.json` (fold from engine.json)"
        )
    ckpt = load_checkpoint(folder, device="cpu")
    preds = predict_images(ckpt, [make() for make in KINDS.values()])
    answered = {
        k: f"{p.label} P={p.prob_malignant:.3f} ood_score={p.ood_score}"
        for k, p in zip(KINDS, preds, strict=True)
        if not p.abstain
    }
    assert not answered, f"{name} answered hostile images: {answered}"
    for kind, pred in zip(KINDS, preds, strict=True):
        assert pred.abstain_reason, kind


@pytest.mark.parametrize("name", MODELS or [pytest.param("none", marks=pytest.mark.skip(reason="no demo models"))])
def test_an_enlarged_thumbnail_abstains_as_too_small_whatever_the_kernel(name):
    """Thumbnails of 4, 8 and 12 px of a real patch, enlarged by nearest, bilinear, bicubic and Lanczos: none is
    answered, each as too small (the image checks; the model's OOD score and confidence do not matter)."""
    from trainer.models import load_checkpoint
    from trainer.predict import predict_images

    folder = DEMO / name
    if not (folder / TRUST_FILE).is_file():
        pytest.skip(f"assets/models/{name} has no trust reference yet")
    thumbs = enlarged_thumbnails(sizes=(64, 224))
    preds = predict_images(load_checkpoint(folder, device="cpu"), list(thumbs.values()))
    wrong = {k: p.abstain or f"{p.label} P={p.prob_malignant:.3f}" for k, p in zip(thumbs, preds, strict=True)}
    assert all(v == "too_small" for v in wrong.values()), wrong
    assert all("enlarged from a thumbnail of about" in p.abstain_reason for p in preds)


@pytest.mark.parametrize("name", MODELS or [pytest.param("none", marks=pytest.mark.skip(reason="no demo models"))])
def test_batched_prediction_gives_the_one_at_a_time_results(name):
    """Issue 16: a folder predicted in batches gives each image what predicting it alone gives (the shipped demo
    models on the bundled real example patches, every trust check included)."""
    import numpy as np

    from trainer.data.images import load_rgb
    from trainer.models import load_checkpoint
    from trainer.predict import predict_images

    ckpt = load_checkpoint(DEMO / name, device="cpu")
    paths = sorted(p for p in EXAMPLES.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    images = [load_rgb(p) for p in paths]  # real IDC patches and BreakHis images of several sizes
    assert len(images) >= 4
    batched = predict_images(ckpt, images, batch_size=len(images))
    for im, b in zip(images, batched, strict=True):
        (one,) = predict_images(ckpt, [im], batch_size=1)
        assert np.allclose(b.probs, one.probs, atol=1e-5) and b.label == one.label and b.abstain == one.abstain
        assert (b.ood_score is None) == (one.ood_score is None)
        if one.ood_score is not None:  # a distance in feature space: batched convolutions' rounding moves it ~3e-4
            assert b.ood == one.ood and b.ood_score == pytest.approx(one.ood_score, rel=2e-3)

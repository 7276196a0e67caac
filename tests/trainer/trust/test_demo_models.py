"""Issue 13's check on the bundled demo models (whatever ``assets/models`` holds): every decodable hostile kind
(1x1 pixel, blank white, random noise, grayscale text, a photo-like scene, an upscaled thumbnail, by pixel
repetition or smoothly) abstains, with its reason. A demo model without a trust reference is skipped, saying
how to fit one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trainer.trust.hostile import KINDS, enlarged_thumbnails
from trainer.rundir import ADAPTER_FILE, TRUST_FILE

DEMO = Path(__file__).resolve().parents[3] / "assets" / "models"
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

"""The one abstention rule: reasons in order of precedence, bounds from TrustConfig, the uncertainty score."""

import pytest

from trainer.config import TrustConfig
from trainer.trust.abstain import decide, is_ood, uncertainty
from trainer.trust.tissue import ImageChecks

TISSUE = ImageChecks(64, 64, tissue_fraction=0.9, he_fraction=0.95)


@pytest.mark.parametrize(
    ("checks", "p", "score", "code"),
    [
        (ImageChecks(1, 1, 1.0, 1.0), 0.99, 1e9, "too_small"),
        (ImageChecks(64, 64, 0.01, 1.0), 0.99, 1e9, "no_tissue"),
        (ImageChecks(64, 64, 0.90, 0.10), 0.99, 1e9, "not_he"),
        (ImageChecks(224, 224, 0.9, 0.9, repeat_fraction=0.95), 0.99, 1e9, "too_small"),  # an enlarged thumbnail
        (ImageChecks(100, 100, 0.9, 0.9, repeat_fraction=0.5), 0.99, 5.0, None),  # a 50 px patch doubled
        (ImageChecks(224, 224, 0.9, 0.9, fit_side=12, fit_kernel="bicubic", fit_residual=1e-5), 0.99, 5.0, "too_small"),
        (ImageChecks(224, 224, 0.9, 0.9, fit_side=15, fit_kernel="lanczos", fit_residual=0.05), 0.99, 5.0, None),
        (
            ImageChecks(224, 224, 0.01, 0.9, fit_side=1, fit_kernel="nearest-neighbour", fit_residual=0.0),
            0.99,
            5.0,
            "no_tissue",
        ),
        (TISSUE, 0.99, 500.0, "ood"),
        (TISSUE, 0.50, 5.0, "uncertain"),
        (TISSUE, 0.97, 5.0, None),
        (TISSUE, 0.03, None, None),  # no OOD reference: the other checks still apply
    ],
)
def test_reasons_and_their_order(checks, p, score, code):
    why = decide(checks, p, score, 100.0 if score is not None else None)
    assert (why.code if why else None) == code
    if why:
        assert why.message and why.to_dict()["abstain"] == code


def test_bounds_come_from_the_config():
    assert decide(TISSUE, 0.6) is not None  # default band 0.35-0.65
    assert decide(TISSUE, 0.6, config=TrustConfig(uncertain_low=0.45, uncertain_high=0.55)) is None
    assert decide(ImageChecks(64, 64, 0.2, 1.0), 0.9, config=TrustConfig(min_tissue_fraction=0.3)).code == "no_tissue"


def test_an_enlarged_thumbnail_reads_like_any_image_too_small():
    why = decide(ImageChecks(224, 224, 0.9, 0.9, fit_side=12, fit_kernel="bicubic", fit_residual=2e-5), 0.99)
    assert why.message.startswith("image too small to classify (224x224 px enlarged from a thumbnail of about 12 px")
    assert "bicubic" in why.message and why.message.endswith("the smallest side must be at least 16 px)")
    blocky = decide(ImageChecks(224, 224, 0.9, 0.9, repeat_fraction=0.95), 0.99)
    assert "about 11 px: 95% of its neighbouring pixels are repeats" in blocky.message
    assert decide(ImageChecks(1, 1, 1.0, 1.0), 0.99).message == (
        "image too small to classify (1x1 px; the smallest side must be at least 16 px)"
    )
    loose = TrustConfig(max_fit_residual=0.1)
    assert decide(
        ImageChecks(224, 224, 0.9, 0.9, fit_side=15, fit_kernel="lanczos", fit_residual=0.05), 0.99, config=loose
    )


def test_uncertainty_and_ood_flag():
    assert uncertainty(0.5) == 1 and uncertainty(0.0) == 0 and uncertainty(1.0) == 0
    assert uncertainty(0.4) == pytest.approx(uncertainty(0.6))
    assert is_ood(None, 3.0) is None and is_ood(4.0, None) is None and is_ood(4.0, 3.0) is True

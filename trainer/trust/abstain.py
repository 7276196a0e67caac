"""The abstention rule: when a model's answer is not given. One definition, used by ``trainer predict``,
``trainer evaluate``, the cross-validation results and the app (Predict tab, API, annotation queue).

A model abstains, in this order of precedence, when the image is
1. ``too_small``: a side under ``MIN_SIDE`` (16 px, the data layer's own limit), or enlarged from a thumbnail
   whose shorter side is under ``MIN_SIDE``, by pixel repetition or any common kernel (``tissue.py``; checked
   after the tissue and colour checks, which name a blank or one-colour image better);
2. ``no_tissue``: less than ``min_tissue_fraction`` of it is tissue (blank, glass, grayscale: ``tissue.py``);
3. ``not_he``: less than ``min_he_fraction`` of its stained pixels have H&E hues (a photo, random colours);
   ``noise``: its neighbouring pixels are unrelated (correlation under ``min_neighbour_correlation``: pixel noise
   of any colours, palette or transparency);
4. ``ood``: its OOD score (``ood.py``) is above the threshold fitted at the end of training;
5. ``uncertain``: the calibrated P(malignant) lies strictly inside (``uncertain_low``, ``uncertain_high``).
Bounds come from ``TrustConfig`` (``trainer/config.py``; defaults in the README). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from trainer.config import TrustConfig

if TYPE_CHECKING:  # the rule itself needs no numpy / Pillow (the store's queue imports it)
    from trainer.trust.tissue import ImageChecks

CODES: dict[str, str] = {
    "too_small": "too small to classify",
    "no_tissue": "no tissue (blank, background or grayscale)",
    "not_he": "not an H&E-stained tissue patch (its colours)",
    "noise": "pixel noise, not tissue (neighbouring pixels unrelated)",
    "ood": "out of distribution (unlike the training images)",
    "uncertain": "uncertain (calibrated probability in the uncertain band)",
}
NO_REFERENCE = "no OOD reference"  # what a checkpoint fitted before this check existed shows


@dataclass(frozen=True)
class Abstention:
    code: str  # a key of CODES
    message: str  # one sentence for the reader, with the measured value and the bound

    def to_dict(self) -> dict:
        return {"abstain": self.code, "abstain_reason": self.message}


def uncertainty(p_malignant, absolute=abs):
    """1 at P(malignant) = 0.5, 0 at 0 or 1: ``1 - |2p - 1|``. The score "most uncertain first" sorts by, and the
    one the uncertain band bounds. ``absolute`` lets the same formula build a SQL expression (``func.abs``)."""
    return 1 - absolute(2 * p_malignant - 1)


def is_ood(score: float | None, threshold: float | None) -> bool | None:
    """True above the threshold; None when there is no score or no reference to compare it with."""
    if score is None or threshold is None:
        return None
    return bool(score > threshold)


def decide(
    checks: ImageChecks | None,
    p_malignant: float | None,
    ood_score: float | None = None,
    ood_threshold: float | None = None,
    config: TrustConfig | None = None,
) -> Abstention | None:
    """The reason to abstain on one image, or None when the answer stands."""
    cfg = config or TrustConfig()
    if checks is not None:
        if checks.too_small:
            return Abstention("too_small", checks.too_small_message())
        if checks.tissue_fraction < cfg.min_tissue_fraction:
            return Abstention(
                "no_tissue",
                f"no tissue: {checks.tissue_fraction:.0%} of the image is tissue (blank, background or grayscale; "
                f"at least {cfg.min_tissue_fraction:.0%} needed)",
            )
        if checks.he_fraction is not None and checks.he_fraction < cfg.min_he_fraction:
            return Abstention(
                "not_he",
                f"not an H&E patch: {checks.he_fraction:.0%} of its stained pixels have H&E hues (pink to purple; "
                f"at least {cfg.min_he_fraction:.0%} needed)",
            )
        if checks.neighbour_correlation < cfg.min_neighbour_correlation:
            return Abstention(
                "noise",
                f"pixel noise, not tissue: neighbouring pixels are unrelated (correlation "
                f"{checks.neighbour_correlation:.2f}; tissue has at least {cfg.min_neighbour_correlation:.2f})",
            )
        enlarged = checks.enlarged_from(cfg.blocky_fraction, cfg.max_fit_residual)
        if enlarged is not None:
            return Abstention("too_small", checks.too_small_message(*enlarged))
    if is_ood(ood_score, ood_threshold):
        return Abstention(
            "ood",
            f"out of distribution: unlike the images this model was trained on (OOD score {ood_score:.4g} > "
            f"threshold {ood_threshold:.4g})",
        )
    if p_malignant is not None and cfg.uncertain_low < p_malignant < cfg.uncertain_high:
        return Abstention(
            "uncertain",
            f"uncertain: calibrated P(malignant) {p_malignant:.2f} lies in the uncertain band "
            f"{cfg.uncertain_low:.2f}-{cfg.uncertain_high:.2f}",
        )
    return None

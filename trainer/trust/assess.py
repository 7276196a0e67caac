"""From one forward pass's logits and features to what is reported for each image: calibrated probabilities,
P(malignant), OOD score and flag, and the abstention (``abstain.decide``). Shared by ``trainer predict``,
``trainer evaluate``, the cross-validation results and the app. Numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trainer.config import TrustConfig
from trainer.data.records import malignant_columns
from trainer.trust.abstain import Abstention, decide, is_ood
from trainer.trust.calibration import softmax
from trainer.trust.reference import TrustReference
from trainer.trust.tissue import ImageChecks


@dataclass
class Assessment:
    """Per-image arrays / lists (N images) in the input order."""

    probs_raw: np.ndarray  # (N, C) softmax of the logits
    probs: np.ndarray  # (N, C) calibrated (the temperature; = probs_raw without a reference)
    p_malignant_raw: np.ndarray  # (N,)
    p_malignant: np.ndarray  # (N,) calibrated
    ood_score: np.ndarray | None  # (N,) None without an OOD reference
    ood: list[bool | None]
    abstentions: list[Abstention | None]
    ood_threshold: float | None = None

    def __len__(self) -> int:
        return len(self.p_malignant)


def assess(
    logits: np.ndarray,
    features: np.ndarray | None,
    classes: Sequence[str],
    reference: TrustReference | None,
    checks: Sequence[ImageChecks | None] | None = None,
    config: TrustConfig | None = None,
) -> Assessment:
    """``config`` overrides the reference's bounds (``trainer predict --set``); without either, the defaults."""
    logits = np.asarray(logits, dtype=np.float64)
    cfg = config or (reference.config if reference is not None else TrustConfig())
    temperature = reference.temperature if reference is not None else 1.0
    raw, probs = softmax(logits), softmax(logits, temperature)
    mal = malignant_columns(classes)
    p_raw, p = raw[:, mal].sum(axis=1), probs[:, mal].sum(axis=1)
    scores = reference.ood_scores(features) if reference is not None else None
    threshold = reference.ood_threshold if reference is not None else None
    checks = list(checks) if checks is not None else [None] * len(p)
    flags, reasons = [], []
    for i in range(len(p)):
        score = float(scores[i]) if scores is not None else None
        flags.append(is_ood(score, threshold))
        reasons.append(decide(checks[i], float(p[i]), score, threshold, cfg))
    return Assessment(raw, probs, p_raw, p, scores, flags, reasons, threshold)

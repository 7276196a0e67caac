"""Calibrated probabilities by temperature scaling (Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern
Neural Networks", ICML 2017): one scalar T > 0 divides the logits, fitted on the validation split by minimising
the negative log-likelihood; p = softmax(logits / T). It changes no arg-max (accuracy and AUC stay), only how
confident the probabilities are. The NLL is convex in 1/T, so a bounded scalar search finds its minimum.

"Logits" are what ``ModelAdapter.logits_and_features`` returns: a CNN's logits, a VLM's class-word
log-likelihoods (their softmax is the VLM's class probabilities). Numpy / scipy only."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

METHOD = "temperature scaling (Guo et al. 2017), NLL on the validation split"
_BETA_BOUNDS = (0.05, 20.0)  # 1/T searched in this range (T from 0.05 to 20)
# Fewer validation images than this fit no temperature (T stays 1): a handful of images would set it by chance.
MIN_IMAGES = 20


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes under softmax(logits / T)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    y = np.asarray(targets, dtype=int)
    if len(y) == 0:
        return float("nan")
    m = z.max(axis=-1, keepdims=True)
    log_norm = (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))[:, 0]
    return float((log_norm - z[np.arange(len(y)), y]).mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The T minimising the validation NLL (1.0 with fewer than ``MIN_IMAGES`` images to fit on)."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets, dtype=int)
    if len(y) < MIN_IMAGES or not np.isfinite(z).all():
        return 1.0
    res = minimize_scalar(lambda beta: nll(z, y, 1.0 / beta), bounds=_BETA_BOUNDS, method="bounded")
    beta = float(res.x)
    return 1.0 / beta if nll(z, y, 1.0 / beta) <= nll(z, y, 1.0) else 1.0


@dataclass
class Calibration:
    """A fitted temperature and the validation figures before and after it."""

    temperature: float = 1.0
    n: int = 0  # validation images it was fitted on
    nll_before: float | None = None
    nll_after: float | None = None
    ece_before: float | None = None
    ece_after: float | None = None
    method: str = METHOD

    @classmethod
    def fit(cls, logits: np.ndarray, targets: np.ndarray) -> Calibration:
        from trainer.metrics import expected_calibration_error

        t = fit_temperature(logits, targets)
        if not len(targets):
            return cls(t, 0)
        return cls(
            t,
            int(len(targets)),
            nll(logits, targets),
            nll(logits, targets, t),
            expected_calibration_error(targets, softmax(logits)),
            expected_calibration_error(targets, softmax(logits, t)),
        )

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits, self.temperature)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (data or {}).items() if k in names})

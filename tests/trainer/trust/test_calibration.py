"""Temperature scaling (Guo et al. 2017) on a miscalibrated toy model: NLL and ECE go down, accuracy stays."""

import numpy as np

from trainer.metrics import expected_calibration_error
from trainer.trust.calibration import MIN_IMAGES, Calibration, fit_temperature, nll, softmax


def _overconfident(n=2000, seed=0):
    """Logits of a model that is right 80 % of the time but ten times too sure of itself."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    correct = rng.random(n) < 0.8
    pred = np.where(correct, y, 1 - y)
    margin = rng.uniform(0.5, 2.0, n) * 10.0
    logits = np.zeros((n, 2))
    logits[np.arange(n), pred] = margin
    return logits, y


def test_temperature_scaling_lowers_nll_on_an_overconfident_model():
    logits, y = _overconfident()
    t = fit_temperature(logits, y)
    assert t > 3.0  # it softens
    assert nll(logits, y, t) < 0.6 * nll(logits, y)
    cal = Calibration.fit(logits, y)
    assert cal.nll_after < cal.nll_before and cal.ece_after < cal.ece_before
    # The arg-max (accuracy) does not change, only the confidence.
    assert (softmax(logits, t).argmax(1) == softmax(logits).argmax(1)).all()
    held_out, y2 = _overconfident(seed=1)
    assert expected_calibration_error(y2, cal.probabilities(held_out)) < expected_calibration_error(
        y2, softmax(held_out)
    )


def test_a_well_calibrated_model_keeps_about_t_1_and_tiny_sets_fit_nothing():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)
    assert abs(fit_temperature(np.stack([np.zeros_like(z), z], 1), y) - 1.0) < 0.15
    logits, y = _overconfident(MIN_IMAGES - 1)
    assert fit_temperature(logits, y) == 1.0
    assert Calibration.from_dict(Calibration.fit(*_overconfident()).to_dict()).temperature > 3.0

"""Mahalanobis OOD score (Lee et al. 2018): far points score high, the threshold is a validation quantile, wide
features are projected, and the reference round-trips through plain arrays."""

import numpy as np
import pytest

from trainer.trust.ood import MahalanobisOOD


def _clusters(rng, n=200, d=16):
    means = np.zeros((2, d))
    means[1, 0] = 6.0
    y = rng.integers(0, 2, n)
    return means[y] + rng.normal(0, 1, (n, d)), y


def test_far_points_score_high_and_the_threshold_is_a_quantile():
    rng = np.random.default_rng(0)
    x, y = _clusters(rng)
    ood = MahalanobisOOD.fit(x, y)
    val, _ = _clusters(rng, 400)
    threshold = ood.set_threshold(ood.score(val), 0.95)
    assert np.mean(ood.score(val) > threshold) == pytest.approx(0.05, abs=0.01)
    far = rng.normal(0, 1, (50, 16)) + 12.0
    assert (ood.score(far) > threshold).all()
    # The distance is to the nearest class: a point at either class mean scores low.
    assert ood.score(np.stack([x[y == 0].mean(0), x[y == 1].mean(0)])).max() < threshold


def test_fewer_images_than_dimensions_still_fit():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, (12, 512)), np.array([0, 1] * 6)
    scores = MahalanobisOOD.fit(x, y).score(rng.normal(0, 1, (3, 512)))
    assert np.isfinite(scores).all()


def test_wide_features_are_projected_and_arrays_round_trip():
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, (300, 64)), rng.integers(0, 2, 300)
    ood = MahalanobisOOD.fit(x, y, max_features=8)
    assert ood.projection.shape == (64, 8) and ood.means.shape == (2, 8) and ood.dim == 64
    ood.set_threshold(ood.score(x), 0.99, "training")
    again = MahalanobisOOD.from_arrays(ood.arrays(), ood.info())
    assert np.allclose(again.score(x[:5]), ood.score(x[:5])) and again.threshold == ood.threshold
    with pytest.raises(ValueError, match="64"):
        ood.score(np.zeros((1, 10)))

"""Significance tests on constructed cases whose p-values are known in closed form."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from trainer.stats import delong_covariance, delong_test, mcnemar_test, wilcoxon_test


def _paired(a_only: int, b_only: int, both: int = 20, neither: int = 5):
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return a, b


def test_mcnemar_exact_binomial():
    # 10 vs 2 discordant pairs: p = 2 * P(X <= 2), X ~ Binomial(12, 1/2) = 2 * (1 + 12 + 66) / 4096.
    res = mcnemar_test(*_paired(10, 2))
    assert res["exact"] is True and (res["a_only"], res["b_only"]) == (10, 2)
    assert res["p_value"] == pytest.approx(158 / 4096)


def test_mcnemar_chi_square_with_continuity_correction():
    # 30 vs 10 discordant pairs: statistic (|30 - 10| - 1)^2 / 40 = 9.025 on 1 degree of freedom.
    res = mcnemar_test(*_paired(30, 10))
    assert res["exact"] is False
    assert res["statistic"] == pytest.approx(9.025)
    assert res["p_value"] == pytest.approx(sps.chi2.sf(9.025, 1))
    assert res["p_value"] == pytest.approx(0.002663, abs=1e-5)


def test_mcnemar_identical_classifiers_and_bad_input():
    a, _ = _paired(0, 0)
    assert mcnemar_test(a, a)["p_value"] == 1.0
    with pytest.raises(ValueError, match="paired"):
        mcnemar_test([True, False], [True])


def _auc_components(y, s):
    """The direct O(m*n) definition of DeLong's structural components."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)


def test_delong_worked_example():
    # Three positives and three negatives per model, worked out by hand:
    # AUC_A = 8/9, AUC_B = 2/3, Var(AUC_A - AUC_B) = 14/81, so z = (2/9) / sqrt(14/81) = 2 / sqrt(14).
    y = np.array([1, 1, 1, 0, 0, 0])
    a = np.array([0.9, 0.6, 0.4, 0.5, 0.3, 0.1])
    b = np.array([0.7, 0.2, 0.8, 0.6, 0.4, 0.3])
    res = delong_test(y, a, b)
    assert res["auc_a"] == pytest.approx(8 / 9) and res["auc_b"] == pytest.approx(2 / 3)
    assert res["se"] == pytest.approx(math.sqrt(14 / 81))
    assert res["z"] == pytest.approx(2 / math.sqrt(14))
    assert res["p_value"] == pytest.approx(2 * sps.norm.sf(2 / math.sqrt(14)))
    assert res["p_value"] == pytest.approx(0.5930, abs=1e-4)


def test_delong_matches_the_direct_definition_with_ties():
    rng = np.random.default_rng(1)
    y = np.array([1] * 30 + [0] * 25)
    a = np.round(rng.normal(y * 1.0, 1.0), 1)  # rounding makes ties
    b = np.round(rng.normal(y * 0.5, 1.0), 1)
    aucs, cov = delong_covariance(y, [a, b])
    (auc_a, v10a, v01a), (auc_b, v10b, v01b) = _auc_components(y, a), _auc_components(y, b)
    assert aucs == pytest.approx([auc_a, auc_b])
    s10, s01 = np.cov([v10a, v10b]), np.cov([v01a, v01b])
    assert cov == pytest.approx(s10 / 30 + s01 / 25)
    from sklearn.metrics import roc_auc_score

    assert aucs[0] == pytest.approx(roc_auc_score(y, a))


def test_delong_degenerate_cases():
    y = np.array([1, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.2, 0.1])
    same = delong_test(y, s, s)
    assert same["p_value"] == 1.0 and same["diff"] == 0.0
    with pytest.raises(ValueError, match="both classes"):
        delong_test([1, 1], [0.2, 0.3], [0.4, 0.5])


def test_wilcoxon_exact_small_samples():
    # All five fold differences positive: the exact two-sided p is 2 / 2^5.
    res = wilcoxon_test([0.91, 0.92, 0.93, 0.94, 0.95], [0.90, 0.90, 0.90, 0.90, 0.90])
    assert res["statistic"] == 0.0 and res["p_value"] == pytest.approx(2 / 32)
    # Differences +1, +2, +3, +4, -5 (ranks): W- = 5; P(W <= 5) counts 10 of the 32 sign patterns.
    res = wilcoxon_test([1, 2, 3, 4, 0], [0, 0, 0, 0, 5])
    assert res["statistic"] == 5.0 and res["p_value"] == pytest.approx(20 / 32)
    assert res["mean_diff"] == pytest.approx(1.0)


def test_wilcoxon_edge_cases():
    assert wilcoxon_test([0.9, 0.8], [0.9, 0.8])["p_value"] == 1.0
    assert wilcoxon_test([0.9, float("nan"), 0.7], [0.8, 0.8, 0.6])["n_folds"] == 2
    with pytest.raises(ValueError, match="same folds"):
        wilcoxon_test([0.9, 0.8], [0.9])

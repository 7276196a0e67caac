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


def _fake_run(root, model, correct_per_mag, splits="same"):
    """A run folder with hand-made predictions: ``correct_per_mag[mag]`` is the list of per-image correctness."""
    import csv
    import json

    (root / "splits.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "splits.json").write_text(json.dumps({"folds": splits}))
    for mag, correct in correct_per_mag.items():
        for k in range(2):
            fdir = root / model / mag / f"fold{k}"
            fdir.mkdir(parents=True)
            rows = [(i, c) for i, c in enumerate(correct) if i % 2 == k]
            with open(fdir / "predictions.csv", "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(
                    [
                        "image_id",
                        "path",
                        "patient_id",
                        "label",
                        "prob_malignant",
                        "pred",
                        "magnification",
                        "fold",
                        "prob_benign",
                    ]
                )
                for i, c in rows:
                    y = i % 2 if i < 4 else (i // 2) % 2  # both classes in every fold
                    p = (0.8 if y else 0.2) if c else (0.3 if y else 0.7)
                    w.writerow([f"img{i}.png", f"/x/img{i}.png", f"p{i}", y, p, int(p >= 0.5), mag, k, 1 - p])
            acc = sum(c for _, c in rows) / len(rows)
            (fdir / "metrics.json").write_text(
                json.dumps({"fold": k, "metrics": {"accuracy": acc, "f1": acc, "roc_auc": acc}})
            )
    return root


def test_compare_runs_on_constructed_predictions(tmp_path):
    from trainer.stats import compare_runs

    a_only, b_only, both = 10, 2, 28
    ca = [True] * both + [True] * a_only + [False] * b_only
    cb = [True] * both + [False] * a_only + [True] * b_only
    a = _fake_run(tmp_path / "a", "resnet34", {"100X": ca, "40X": ca})
    b = _fake_run(tmp_path / "b", "alexnet", {"100X": cb, "40X": cb, "400X": cb})
    res = compare_runs(a, b)
    assert [r["magnification"] for r in res["rows"]] == ["40X", "100X"]  # magnification order, both runs only
    for row in res["rows"]:
        assert row["n_images"] == 40
        assert (row["mcnemar"]["a_only"], row["mcnemar"]["b_only"]) == (10, 2)
        assert row["mcnemar"]["p_value"] == pytest.approx(158 / 4096)
        assert row["accuracy_a"] == pytest.approx(38 / 40) and row["accuracy_b"] == pytest.approx(30 / 40)
        assert set(row["wilcoxon"]) == {"accuracy", "f1", "roc_auc"}
    other = _fake_run(tmp_path / "c", "alexnet", {"40X": cb}, splits="other")
    res = compare_runs(a, other)
    assert res["same_splits"] is False and res["rows"][0]["wilcoxon"]["accuracy"]["p_value"] is None

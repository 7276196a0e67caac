"""Significance tests between two models on the same images / folds: McNemar on paired correctness
(statsmodels), DeLong's test for the difference of two correlated ROC-AUCs, and the Wilcoxon signed-rank test
over per-fold metrics (scipy). ``compare_runs`` applies them to two run folders (the Dashboard calls it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainer.data.records import LABELS, MAGNIFICATIONS, SUBTYPES, malignant_truth
from trainer.rundir import RunDir, predicts_subtypes


# --- McNemar ---------------------------------------------------------------------------------------------
def mcnemar_test(correct_a: Sequence[bool], correct_b: Sequence[bool], exact: bool | None = None) -> dict:
    """Paired correctness of two classifiers on the same images. ``exact`` (binomial) by default when the
    discordant pairs are fewer than 25, else chi-square with continuity correction."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"McNemar needs paired predictions: {a.shape} vs {b.shape}")
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    a_only, b_only = int(table[0, 1]), int(table[1, 0])
    if exact is None:
        exact = (a_only + b_only) < 25
    if a_only + b_only == 0:
        return {"statistic": 0.0, "p_value": 1.0, "a_only": 0, "b_only": 0, "exact": exact, "n": int(len(a))}
    res = mcnemar(table, exact=exact, correction=True)
    return {
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "a_only": a_only,
        "b_only": b_only,
        "exact": bool(exact),
        "n": int(len(a)),
    }


# --- DeLong ----------------------------------------------------------------------------------------------
# DeLong et al. (1988) in the fast O(n log n) form of Sun & Xu (2014, IEEE SPL 21:1389). Neither scipy nor
# statsmodels provides it (only R's pROC does), so it is written out here and checked in the tests against
# the direct O(m*n) definition of the structural components.
def _midrank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    z = x[order]
    n = len(x)
    ranks = np.empty(n, dtype=float)
    i = 0
    while i < n:
        j = i
        while j < n and z[j] == z[i]:
            j += 1
        ranks[i:j] = 0.5 * (i + j - 1) + 1.0  # mean 1-based rank of a tie block
        i = j
    out = np.empty(n, dtype=float)
    out[order] = ranks
    return out


def delong_covariance(y_true: Sequence[int], scores: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """(AUCs (k,), covariance (k, k)) of ``k`` score vectors on the same binary labels."""
    y = np.asarray(y_true).astype(int)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    pos, neg = s[:, y == 1], s[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ValueError("DeLong needs both classes in the labels")
    k = s.shape[0]
    tx = np.stack([_midrank(pos[r]) for r in range(k)])
    ty = np.stack([_midrank(neg[r]) for r in range(k)])
    tz = np.stack([_midrank(np.concatenate([pos[r], neg[r]])) for r in range(k)])
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v01 = (tz[:, :m] - tx) / n  # structural components of the positives
    v10 = 1.0 - (tz[:, m:] - ty) / m  # ... and of the negatives
    sx = np.atleast_2d(np.cov(v01)) if m > 1 else np.zeros((k, k))
    sy = np.atleast_2d(np.cov(v10)) if n > 1 else np.zeros((k, k))
    return aucs, sx / m + sy / n


def delong_test(y_true: Sequence[int], scores_a: Sequence[float], scores_b: Sequence[float]) -> dict:
    """Two-sided test of AUC(a) == AUC(b) for correlated ROC curves (same cases)."""
    aucs, cov = delong_covariance(y_true, [scores_a, scores_b])
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 1e-15:
        z, p = (0.0, 1.0) if abs(diff) < 1e-12 else (math.copysign(math.inf, diff), 0.0)
    else:
        from scipy import stats as sps  # here, not at the top: the app imports this module at start

        z = diff / math.sqrt(var)
        p = float(2 * sps.norm.sf(abs(z)))
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "diff": diff,
        "se": math.sqrt(max(var, 0.0)),
        "z": z,
        "p_value": p,
    }


# --- Wilcoxon --------------------------------------------------------------------------------------------
def wilcoxon_test(values_a: Sequence[float], values_b: Sequence[float]) -> dict:
    """Signed-rank test on paired per-fold values (exact distribution for small n, as scipy chooses)."""
    a, b = np.asarray(values_a, float), np.asarray(values_b, float)
    if a.shape != b.shape:
        raise ValueError(f"Wilcoxon needs the same folds in both runs: {len(a)} vs {len(b)} values")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    out = {"n_folds": int(len(a)), "mean_diff": float(np.mean(a - b)) if len(a) else None}
    if len(a) == 0 or np.allclose(a, b):
        return {**out, "statistic": None, "p_value": 1.0 if len(a) else None}
    from scipy import stats as sps  # here, not at the top: the app imports this module at start

    res = sps.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    return {**out, "statistic": float(res.statistic), "p_value": float(res.pvalue)}


# --- two runs --------------------------------------------------------------------------------------------
def _pick_model(run_dir: Path, model: str | None) -> str:
    models = RunDir(run_dir).models(with_predictions=True)
    if not models:
        raise FileNotFoundError(f"no finished folds (predictions.csv) in {run_dir}")
    if model is None:
        if len(models) > 1:
            raise ValueError(f"{run_dir} holds several models ({', '.join(models)}); name one (--model-a / --model-b)")
        return models[0]
    if model not in models:
        raise ValueError(f"{run_dir} has no model {model!r}; it has {', '.join(models)}")
    return model


def _predictions(run_dir: Path, model: str, magnification: str) -> dict[str, dict]:
    from trainer.runfiles import read_predictions

    out: dict[str, dict] = {}
    for fold in RunDir(run_dir).folds(model, magnification):
        if fold.predictions_file.is_file():
            out.update((row["image_id"], row) for row in read_predictions(fold.predictions_file))
    return out


def _fold_metrics(run_dir: Path, model: str, magnification: str) -> dict[int, dict]:
    out = {}
    for fold in RunDir(run_dir).folds(model, magnification, finished=True):
        rec = fold.metrics()
        if rec is not None:
            out[int(rec["fold"])] = rec["metrics"]
    return out


def _malignant_truth(rows: list[dict], classes_binary: bool) -> np.ndarray:
    return np.array(malignant_truth([r["label"] for r in rows], LABELS if classes_binary else SUBTYPES))


def compare_runs(
    a: str | Path,
    b: str | Path,
    *,
    model_a: str | None = None,
    model_b: str | None = None,
    magnifications: Sequence[str] | None = None,
    metrics: Sequence[str] = ("accuracy", "f1", "roc_auc"),
) -> dict:
    """Compare model A of run ``a`` with model B of run ``b`` (they may be the same run folder) at every
    magnification both have: McNemar and DeLong on the test images both predicted (pooled over folds), and
    Wilcoxon over the folds both finished (only meaningful when both runs used the same splits)."""
    a, b = Path(a), Path(b)
    for d in (a, b):
        if not d.is_dir():
            raise FileNotFoundError(f"run folder not found: {d}")
    ma, mb = _pick_model(a, model_a), _pick_model(b, model_b)
    if a.resolve() == b.resolve() and ma == mb:
        raise ValueError(f"both sides are {ma} of {a}: name two different models (--model-a / --model-b)")
    mags_a = {p.name for p in (a / ma).iterdir() if p.is_dir()}
    mags_b = {p.name for p in (b / mb).iterdir() if p.is_dir()}
    order = {m: i for i, m in enumerate(MAGNIFICATIONS)}  # 40X before 100X, not alphabetical
    common = [
        m
        for m in (magnifications or sorted(mags_a & mags_b, key=lambda m: (order.get(m, len(order)), m)))
        if m in mags_a and m in mags_b
    ]
    same_splits = _same_splits(a, b)
    rows = []
    for mag in common:
        pa, pb = _predictions(a, ma, mag), _predictions(b, mb, mag)
        ids = sorted(set(pa) & set(pb))
        if not ids:
            continue
        ra, rb = [pa[i] for i in ids], [pb[i] for i in ids]
        if any(x["label"] != y["label"] for x, y in zip(ra, rb, strict=True)):
            raise ValueError(f"{mag}: the two runs disagree on image labels; were they trained on the same target?")
        y = np.array([int(r["label"]) for r in ra])
        correct_a = np.array([int(r["pred"]) for r in ra]) == y
        correct_b = np.array([int(r["pred"]) for r in rb]) == y
        binary = "prob_benign" in ra[0] and not predicts_subtypes(ra[0])
        truth = _malignant_truth(ra, binary)
        row = {
            "magnification": mag,
            "n_images": len(ids),
            "only_in_a": len(set(pa) - set(pb)),
            "only_in_b": len(set(pb) - set(pa)),
            "accuracy_a": float(correct_a.mean()),
            "accuracy_b": float(correct_b.mean()),
            "mcnemar": mcnemar_test(correct_a, correct_b),
        }
        try:
            row["delong"] = delong_test(
                truth, [float(r["prob_malignant"]) for r in ra], [float(r["prob_malignant"]) for r in rb]
            )
        except ValueError as exc:
            row["delong"] = {"p_value": None, "note": str(exc)}
        fa, fb = _fold_metrics(a, ma, mag), _fold_metrics(b, mb, mag)
        folds = sorted(set(fa) & set(fb))
        row["folds"] = folds
        row["wilcoxon"] = {
            m: (
                wilcoxon_test([fa[k].get(m, np.nan) for k in folds], [fb[k].get(m, np.nan) for k in folds])
                if same_splits
                else {"p_value": None, "note": "runs used different folds"}
            )
            for m in metrics
        }
        rows.append(row)
    if not rows:
        raise ValueError(
            f"no magnification with test predictions in both runs ({ma}: {sorted(mags_a)}, {mb}: {sorted(mags_b)})"
        )
    return {
        "a": {"run": str(a), "model": ma},
        "b": {"run": str(b), "model": mb},
        "same_splits": same_splits,
        "rows": rows,
    }


def _same_splits(a: Path, b: Path) -> bool:
    splits_a = RunDir(a).splits()
    return splits_a is not None and splits_a == RunDir(b).splits()


def _p(v) -> str:
    return "—" if v is None else (f"{v:.2e}" if v < 1e-3 else f"{v:.4f}")


def comparison_markdown(result: dict) -> str:
    a, b = result["a"], result["b"]
    lines = [
        f"# {a['model']} ({a['run']}) vs {b['model']} ({b['run']})",
        "",
        "McNemar (paired correctness) and DeLong (AUC difference) on the test images both runs predicted, pooled over folds; "
        "Wilcoxon signed-rank over the folds both finished"
        + ("" if result["same_splits"] else " (not computed: the runs used different folds)")
        + ".",
        "",
    ]
    metric_names = list(result["rows"][0]["wilcoxon"]) if result["rows"] else []
    head = ["Magnification", "Images", "Acc. A", "Acc. B", "McNemar p", "AUC A", "AUC B", "DeLong p"] + [
        f"Wilcoxon p ({m})" for m in metric_names
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        d = r["delong"]
        cells = [
            r["magnification"],
            str(r["n_images"]),
            f"{r['accuracy_a']:.4f}",
            f"{r['accuracy_b']:.4f}",
            _p(r["mcnemar"]["p_value"]),
            f"{d['auc_a']:.4f}" if "auc_a" in d else "—",
            f"{d['auc_b']:.4f}" if "auc_b" in d else "—",
            _p(d.get("p_value")),
        ]
        cells += [_p(r["wilcoxon"][m].get("p_value")) for m in metric_names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

"""What the Dashboard shows, read from run folders through the trainer: the per-magnification table
(``trainer.results.load_results``, the same numbers as ``results.json``) with the paper's figures beside ours,
per-fold predictions for ROC / calibration / confusion matrices, cross-dataset evaluations
(``trainer evaluate``'s ``eval-*`` folders) and the significance tests of ``trainer.stats.compare_runs``.
Beside the runs: the results committed with the project (``results/``: ``results.json`` without fold folders),
which have the table and the per-fold bars but no predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from histoapp.settings import PROJECT_ROOT
from trainer.data import provenance
from trainer.data.records import LABELS, SUBTYPES, malignant_truth
from trainer.metrics import METRIC_NAMES, METRICS
from trainer.results import PAPER_COLUMNS, load_results, model_cell, results_partial_mark
from trainer.rundir import EVAL_PREFIX, RunDir, predicts_subtypes, read_json, run_in, runs_in
from trainer.stats import compare_runs, comparison_markdown

COMMITTED_DIR = PROJECT_ROOT / "results"  # results committed with the project (results/README.md)


def runs_with_results(runs_dir: str | Path) -> list[str]:
    """Run folders with at least one finished fold, newest first."""
    found = [r for r in runs_in(runs_dir) if r.has_results()]
    return [r.name for r in sorted(found, key=lambda r: -r.path.stat().st_mtime)]


def committed_results() -> list[str]:
    """Keys of the committed results folders: their path in the project with a trailing "/" (``results/``,
    ``results/idc/cnn/``), which no run name has (a run is one folder below the runs folder)."""
    files = sorted(COMMITTED_DIR.rglob(RunDir(COMMITTED_DIR).results_file("json").name))
    return [f"{f.parent.relative_to(PROJECT_ROOT).as_posix()}/" for f in files]


def is_committed(name: str) -> bool:
    return name.endswith("/")


def _committed(name: str) -> dict:
    """A committed folder's ``results.json`` (what ``load_results`` returned when it was made)."""
    if name not in committed_results():  # only the project's own folders, whatever the browser sends
        raise FileNotFoundError(f"no committed results {name!r}")
    return read_json(RunDir(PROJECT_ROOT / name).results_file("json"))


def results_of(runs_dir: str | Path, name: str) -> dict:
    """A run's results (``load_results``: up to date with its finished folds) or a committed folder's."""
    return _committed(name) if is_committed(name) else load_results(run_in(runs_dir, name).path)


def committed_label(name: str) -> str:
    """What a committed results folder holds, in one line: its run name, models, magnifications and folds."""
    res = _committed(name)
    rows = res["rows"]
    models = ", ".join(dict.fromkeys(r["model"] for r in rows))
    mags = ", ".join(dict.fromkeys(r["magnification"] for r in rows))
    folds = max((r["n_folds"] for r in rows), default=0)
    return f"{name} — {res['name']}: {models} at {mags}, {folds} folds, {provenance.of_results(res).label} data"


def summary(runs_dir: str | Path, names: list[str]) -> pd.DataFrame:
    """One row per (run, model, magnification): where its images came from (``trainer.data.provenance``: real or
    generated, which dataset), mean and std of every metric over folds, and the paper's figure where it publishes
    one. Numbers straight from ``load_results`` (what ``results.json`` holds)."""
    rows = []
    for name in names:
        res = results_of(runs_dir, name)
        source, mark = provenance.of_results(res), results_partial_mark(res)
        for r in res["rows"]:
            row = {
                "run": name,
                "run_state": mark or "finished",
                "data": source.label,
                "data_kind": source.kind,
                "model": r["model"],
                "paper_model": r["paper_model"] or "",
                "magnification": r["magnification"],
                "n_folds": r["n_folds"],
            }
            for m in METRICS:
                row[f"{m}_mean"], row[f"{m}_std"] = r["mean"].get(m), r["std"].get(m)
            for m in PAPER_COLUMNS:
                row[f"paper_{m}"] = r["paper"].get(m)
            rows.append(row)
    cols = (
        ["run", "run_state", "data", "data_kind", "model", "paper_model", "magnification", "n_folds"]
        + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
        + [f"paper_{m}" for m in PAPER_COLUMNS]
    )
    return pd.DataFrame(rows, columns=cols)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def cell(mean, std) -> str:
    """``mean ± std`` to 3 decimals: fold-to-fold spread is in the second decimal, the CSV has every digit."""
    if _missing(mean):
        return "—"
    return f"{mean:.3f}" if _missing(std) else f"{mean:.3f} ± {std:.3f}"


# Shown under the table: the short headers and the brackets, in words.
TABLE_LEGEND = (
    "Data: the images the run trained and was tested on (real tissue, or patches generated by the trainer). "
    "Mean ± sample std over folds; in brackets the paper's published figure, where it gives one (for the model "
    "named in the Model column; it was measured on real BreakHis). Mag.: magnification. Patient acc.: patient-level accuracy (BreakHis patient "
    "recognition rate). Every digit is in Export CSV."
)


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    """The per-magnification table as shown: ``mean ± std`` per paper metric with the paper's published figure
    beside it in brackets (where the paper gives one), and the patient-level accuracy. Narrow enough for every
    column to show whole at 1400 px: short headers (``TABLE_LEGEND``), 3 decimals, the paper's model named in
    the Model cell as in ``results.md`` (``trainer.results.model_cell``)."""
    out = pd.DataFrame(
        {
            # A run that did not finish its grid says so beside its name (its means cover fewer folds).
            "Run": [r if s == "finished" else f"{r} ({s})" for r, s in zip(df["run"], df["run_state"], strict=True)],
            "Data": df["data"],
            "Model": [
                model_cell({"model": m, "paper_model": p}) for m, p in zip(df["model"], df["paper_model"], strict=True)
            ],
            "Mag.": df["magnification"],
            "Folds": df["n_folds"],
        }
    )
    for m in PAPER_COLUMNS:
        out[METRIC_NAMES[m]] = [
            cell(a, b) + ("" if _missing(p) else f" ({p:.3f})")
            for a, b, p in zip(df[f"{m}_mean"], df[f"{m}_std"], df[f"paper_{m}"], strict=True)
        ]
    out["Patient acc."] = [
        cell(a, b) for a, b in zip(df["patient_accuracy_mean"], df["patient_accuracy_std"], strict=True)
    ]
    return out


def data_warning(df: pd.DataFrame) -> str:
    """A warning above the table when some rows come from generated patches ("" when none do): their scores
    say the pipeline works, not how well a model reads tissue, and sit beside the paper's real-BreakHis figures."""
    runs = list(dict.fromkeys(df.loc[df["data_kind"] == "generated", "run"]))
    if not runs:
        return ""
    return (
        f"⚠ Generated data: {', '.join(runs)} trained and tested on patches generated by the trainer "
        "(trainer.data.synthetic), not on tissue. Their scores show the pipeline at work; they are not comparable "
        "with the paper's figures or with runs on real images."
    )


def groups(runs_dir: str | Path, names: list[str]) -> list[str]:
    """``run / model / magnification`` keys that have predictions (for the ROC, calibration, confusion views)."""
    out = []
    for name in (n for n in names if not is_committed(n)):  # committed results hold no predictions
        for fold in run_in(runs_dir, name).folds():
            if not fold.predictions_file.is_file():
                continue
            key = f"{name} / {fold.model} / {fold.magnification}"
            if key not in out:
                out.append(key)
    return out


def fold_predictions(runs_dir: str | Path, key: str) -> dict[int, pd.DataFrame]:
    name, model, mag = [s.strip() for s in key.split(" / ")]
    return {
        f.fold: pd.read_csv(f.predictions_file)
        for f in run_in(runs_dir, name).folds(model, mag)
        if f.predictions_file.is_file()
    }


def _binary_truth(df: pd.DataFrame) -> np.ndarray:
    y = df["label"].to_numpy().astype(int)
    subtype = predicts_subtypes(df.columns)
    return np.array(malignant_truth(y, SUBTYPES if subtype else LABELS))


def roc_curves(preds: dict[int, pd.DataFrame], grid: int = 101) -> dict:
    """Per-fold ROC curves of P(malignant), and their mean (vertical averaging on a common FPR grid)."""
    from sklearn.metrics import roc_curve  # on first use: scikit-learn is not imported while the app starts

    fpr_grid = np.linspace(0, 1, grid)
    folds, tprs = {}, []
    for k, df in preds.items():
        y = _binary_truth(df)
        if len(np.unique(y)) < 2:
            continue  # undefined with one class in the test fold
        fpr, tpr, _ = roc_curve(y, df["prob_malignant"].to_numpy())
        folds[k] = (fpr, tpr)
        t = np.interp(fpr_grid, fpr, tpr)
        t[0] = 0.0
        tprs.append(t)
    mean = (fpr_grid, np.mean(tprs, axis=0)) if tprs else None
    if mean is not None:
        mean[1][-1] = 1.0
    return {"folds": folds, "mean": mean}


def calibration(preds: dict[int, pd.DataFrame], bins: int = 10) -> tuple[np.ndarray, np.ndarray] | None:
    """Reliability curve of P(malignant) pooled over folds (scikit-learn)."""
    from sklearn.calibration import calibration_curve  # on first use, as in roc_curves

    if not preds:
        return None
    df = pd.concat(preds.values())
    y = _binary_truth(df)
    if len(np.unique(y)) < 2:
        return None
    frac, conf = calibration_curve(y, df["prob_malignant"].to_numpy(), n_bins=bins, strategy="uniform")
    return conf, frac


def confusion(runs_dir: str | Path, key: str) -> dict[int, list[list[int]]]:
    """Each fold's test confusion matrix, as the trainer computed it (``metrics.json``)."""
    name, model, mag = [s.strip() for s in key.split(" / ")]
    out = {}
    for fold in run_in(runs_dir, name).folds(model, mag, finished=True):
        rec = fold.metrics()
        if rec and rec["metrics"].get("confusion_matrix") is not None:
            out[int(rec["fold"])] = rec["metrics"]["confusion_matrix"]
    return out


def class_names(runs_dir: str | Path, key: str) -> list[str]:
    from trainer.data.records import class_names as names

    cfg = load_results(run_in(runs_dir, key.split(" / ")[0]).path)["config"]
    return names((cfg.get("data") or {}).get("target", "label"))


def patient_table(runs_dir: str | Path, names: list[str]) -> pd.DataFrame:
    """Image-level and patient-level accuracy per fold (the BreakHis patient recognition rate), with each run's
    data source (as in ``summary``)."""
    rows = []
    for name in names:
        res = results_of(runs_dir, name)
        source = provenance.of_results(res)
        for r in res["rows"]:
            for f in r["per_fold"]:
                rows.append(
                    {
                        "run": name,
                        "data": source.label,
                        "data_kind": source.kind,
                        "model": r["model"],
                        "magnification": r["magnification"],
                        "fold": f["fold"],
                        "image accuracy": f.get("accuracy"),
                        "patient accuracy": f.get("patient_accuracy"),
                    }
                )
    cols = ["run", "data", "data_kind", "model", "magnification", "fold", "image accuracy", "patient accuracy"]
    return pd.DataFrame(rows, columns=cols)


def cross_dataset(runs_dir: str | Path, names: list[str]) -> pd.DataFrame:
    """Results of ``python -m trainer evaluate`` on other datasets (e.g. BACH), found as ``eval-*`` folders."""
    rows = []
    for name in (n for n in names if not is_committed(n)):  # committed evaluations are in results/*/README.md
        run = run_in(runs_dir, name)
        for p in run.evaluations():
            rec = read_json(p)
            if rec is None:
                continue
            rel = p.parent.relative_to(run.path).parts
            m = rec.get("metrics", {})
            rows.append(
                {
                    "run": name,
                    "model": rel[0] if len(rel) > 3 else "",
                    "trained at": rel[1] if len(rel) > 3 else "",
                    "fold": rel[2] if len(rel) > 3 else "",
                    "dataset": p.parent.name.removeprefix(EVAL_PREFIX),
                    "source": rec.get("source"),
                    "images": rec.get("n"),
                    **{METRIC_NAMES[k]: m.get(k) for k in ("accuracy", "f1", "roc_auc", "patient_accuracy")},
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "run",
            "model",
            "trained at",
            "fold",
            "dataset",
            "source",
            "images",
            "Accuracy",
            "F1",
            "AUC",
            "Patient acc.",
        ],
    )


def model_keys(runs_dir: str | Path, names: list[str]) -> list[str]:
    """``run / model`` choices for the significance test."""
    return sorted({" / ".join(k.split(" / ")[:2]) for k in groups(runs_dir, names)})


def significance(runs_dir: str | Path, a: str, b: str) -> tuple[dict, str]:
    """``trainer.stats.compare_runs`` between model A of one run and model B of another (or the same) run."""
    (ra, ma), (rb, mb) = [s.split(" / ") for s in (a, b)]
    result = compare_runs(run_in(runs_dir, ra).path, run_in(runs_dir, rb).path, model_a=ma, model_b=mb)
    return result, comparison_markdown(result)

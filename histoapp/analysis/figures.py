"""Plotly figures of the Dashboard's analysis: metric bars, ROC, calibration, confusion matrices, patient-level
accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from histoapp.runs.figures import LAYOUT, empty
from trainer.metrics import METRIC_NAMES


def _title(text: str, key: str) -> dict:
    """A title with the run / model / magnification below it, smaller: on one line with it, a half-width plot
    cut it off."""
    return dict(text=text, subtitle=dict(text=key))


def bars(summary: pd.DataFrame, metric: str) -> go.Figure:
    """``metric`` by magnification, one bar group per run/model (± std), the paper's figure as a marker."""
    if summary.empty:
        return empty(METRIC_NAMES.get(metric, metric))
    fig = go.Figure()
    for (run, model), df in summary.groupby(["run", "model"], sort=False):
        fig.add_trace(
            go.Bar(
                x=df["magnification"],
                y=df[f"{metric}_mean"],
                name=f"{model} ({run})",
                error_y=dict(type="data", array=df[f"{metric}_std"].fillna(0).to_numpy()),
            )
        )
    col = f"paper_{metric}"
    if col in summary and summary[col].notna().any():
        paper = summary[summary[col].notna()]
        fig.add_trace(
            go.Scatter(
                x=paper["magnification"],
                y=paper[col],
                mode="markers",
                name="paper",
                marker=dict(symbol="diamond", size=12, color="black"),
                text=paper["paper_model"],
                hovertemplate="%{text}: %{y:.4f}",
            )
        )
    fig.update_layout(
        title=f"{METRIC_NAMES.get(metric, metric)} by magnification (mean ± std over folds)",
        barmode="group",
        yaxis=dict(range=[0, 1.05]),
        **LAYOUT,
    )
    return fig


def roc_figure(roc: dict, title: str) -> go.Figure:
    if not roc["folds"]:
        return empty("ROC", "no fold with both classes")
    fig = go.Figure()
    for k, (fpr, tpr) in sorted(roc["folds"].items()):
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"fold {k}", line=dict(width=1), opacity=0.6))
    fpr, tpr = roc["mean"]
    fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name="mean", line=dict(width=3, color="black")))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(dash="dot", color="grey")))
    fig.update_layout(
        title=_title("ROC per fold and mean", title),
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
        **LAYOUT,
    )
    return fig


def calibration_figure(curve, title: str) -> go.Figure:
    if curve is None:
        return empty("Calibration", "needs both classes")
    conf, frac = curve
    fig = go.Figure(
        [
            go.Scatter(x=conf, y=frac, mode="lines+markers", name="model"),
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line=dict(dash="dot", color="grey")),
        ]
    )
    fig.update_layout(
        title=_title("Calibration (P(malignant), pooled folds)", title),
        xaxis_title="mean predicted probability",
        yaxis_title="fraction malignant",
        **LAYOUT,
    )
    return fig


def confusion_figure(matrices: dict[int, list[list[int]]], classes: list[str], title: str) -> go.Figure:
    """Each fold's confusion matrix and their sum."""
    if not matrices:
        return empty("Confusion matrices")
    panels = [(f"fold {k}", np.array(m)) for k, m in sorted(matrices.items())] + [
        ("all folds", np.sum([np.array(m) for m in matrices.values()], axis=0))
    ]
    # Class names on the first panel's rows only (shared rows); each panel named below its columns.
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True)
    for i, (name, m) in enumerate(panels, start=1):
        fig.add_trace(
            go.Heatmap(z=m, x=classes, y=classes, text=m, texttemplate="%{text}", colorscale="Blues", showscale=False),
            1,
            i,
        )
        fig.update_xaxes(title_text=name, row=1, col=i)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=_title("Confusion matrices (rows: true, columns: predicted)", title), **LAYOUT)
    return fig


def patient_figure(table: pd.DataFrame) -> go.Figure:
    if table.empty:
        return empty("Patient-level accuracy")
    fig = go.Figure()
    for (run, model, mag), df in table.groupby(["run", "model", "magnification"], sort=False):
        fig.add_trace(
            go.Bar(x=[f"fold {k}" for k in df["fold"]], y=df["patient accuracy"], name=f"{model} {mag} ({run})")
        )
    fig.update_layout(title="Patient-level accuracy per fold", barmode="group", yaxis=dict(range=[0, 1.05]), **LAYOUT)
    return fig

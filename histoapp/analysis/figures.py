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
    for (run, model, data), df in summary.groupby(["run", "model", "data"], sort=False):
        fig.add_trace(
            go.Bar(
                x=df["magnification"],
                y=df[f"{metric}_mean"],
                name=f"{model} ({run}; {data})",
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


# One colour per kind of data (the legend names the dataset): never two series in one colour, however many runs.
DATA_COLOURS = {"real": "#1f77b4", "generated": "#ff7f0e", "unknown": "#7f7f7f"}


def patient_figure(table: pd.DataFrame) -> go.Figure:
    """Patient-level accuracy, one horizontal bar per run / model / magnification (mean over folds ± std, each
    fold a dot), coloured by the run's data source. Readable with many runs: each series is named on its own row
    (one legend entry per colour would repeat colours past plotly's ten), and the figure grows with the rows."""
    if table.empty:
        return empty("Patient-level accuracy")
    table = table.assign(series=table["model"] + " " + table["magnification"] + " · " + table["run"])
    stats = table.groupby(["series", "data", "data_kind"], sort=False)["patient accuracy"].agg(["mean", "std"])
    stats = stats.reset_index()
    fig = go.Figure()
    for (data, kind), df in stats.groupby(["data", "data_kind"], sort=False):
        fig.add_trace(
            go.Bar(
                y=df["series"],
                x=df["mean"],
                orientation="h",
                name=data,
                marker_color=DATA_COLOURS.get(kind, DATA_COLOURS["unknown"]),
                error_x=dict(type="data", array=df["std"].fillna(0).to_numpy()),
                hovertemplate="%{y}: mean %{x:.3f}<extra>" + data + "</extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            y=table["series"],
            x=table["patient accuracy"],
            mode="markers",
            name="one fold",
            marker=dict(color="black", size=6, symbol="circle-open"),
            text=[f"fold {k}" for k in table["fold"]],
            hovertemplate="%{y}, %{text}: %{x:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Patient-level accuracy (bar: mean over folds ± std; dots: each fold)",
        barmode="overlay",
        xaxis=dict(range=[0, 1.05], title="patient-level accuracy"),
        yaxis=dict(autorange="reversed", type="category"),
        **{**LAYOUT, "height": max(LAYOUT["height"], 160 + 26 * len(stats))},
    )
    return fig

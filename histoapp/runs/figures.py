"""Plotly figures of a live run for the Train tab (loss, validation curves); the shared empty figure and layout."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

LAYOUT = dict(
    template="plotly_white", height=340, margin=dict(l=50, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.2)
)


def empty(title: str, note: str = "no data yet") -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title=title, **LAYOUT, annotations=[dict(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")]
    )
    return fig


def loss_figure(steps: pd.DataFrame) -> go.Figure:
    """Training loss per logged step (one line per model / magnification / fold), learning rate on the right."""
    if steps.empty:
        return empty("Training loss")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for series, df in steps.groupby("series", sort=False):
        fig.add_trace(
            go.Scatter(x=df["step"], y=df["loss"], mode="lines+markers", name=f"loss {series}", marker=dict(size=4))
        )
    last = steps[steps["series"] == steps["series"].iloc[-1]]
    fig.add_trace(
        go.Scatter(x=last["step"], y=last["lr"], mode="lines", name="lr", line=dict(dash="dot", color="grey")),
        secondary_y=True,
    )
    fig.update_layout(title="Training loss", **LAYOUT)
    fig.update_xaxes(title_text="optimiser step")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="learning rate", secondary_y=True, showgrid=False)
    return fig


def validation_figure(epochs: pd.DataFrame) -> go.Figure:
    """Per-epoch validation loss, accuracy and AUC (and the training loss) per fold."""
    if epochs.empty:
        return empty("Validation", "no finished epoch yet")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy / AUC"))
    for series, df in epochs.groupby("series", sort=False):
        x = df["epoch"] + 1
        fig.add_trace(go.Scatter(x=x, y=df["train_loss"], mode="lines+markers", name=f"train loss {series}"), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=df["val_loss"], mode="lines+markers", name=f"val loss {series}"), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=df["val_accuracy"], mode="lines+markers", name=f"val acc {series}"), 1, 2)
        fig.add_trace(
            go.Scatter(x=x, y=df["val_auc"], mode="lines+markers", name=f"val AUC {series}", line=dict(dash="dash")),
            1,
            2,
        )
    fig.update_layout(title="Validation per epoch", **LAYOUT)
    fig.update_xaxes(title_text="epoch")
    return fig

"""Plotly figures of a live run for the Train tab (loss, validation curves); the shared empty figure and layout."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots


def _template() -> go.layout.Template:
    """plotly_white, with the title at the top and the legend at the bottom of the figure (yref "container"):
    plotly then reserves room for them besides what the axes take for their tick labels and titles (automargin),
    so a legend never covers an axis title and no label is clipped, whatever the figure's width or legend size.
    (A legend placed relative to the plot area, as before, sat on the x-axis title.)"""
    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.update(
        # pad: room for the label Gradio draws over the figure's top-left corner.
        title=dict(yref="container", y=1, yanchor="top", pad=dict(t=30), automargin=True),
        legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left"),
        xaxis=dict(automargin=True),
        yaxis=dict(automargin=True),
    )
    return template


# Every figure of the app. Subplot titles (annotations) would sit in the title's room: name panels by axis titles.
LAYOUT = dict(template=_template(), height=360, margin=dict(l=10, r=10, t=10, b=10))


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
    """Per-epoch validation loss, accuracy and AUC (and the training loss) per fold: one colour and one legend
    entry per fold, the quantity by line style (four entries per fold filled the figure with legend)."""
    if epochs.empty:
        return empty("Validation", "no finished epoch yet")
    fig = make_subplots(rows=1, cols=2)
    lines = (  # (column, quantity, dash, subplot column)
        ("val_loss", "val loss", "solid", 1),
        ("train_loss", "train loss", "dot", 1),
        ("val_accuracy", "val accuracy", "solid", 2),
        ("val_auc", "val AUC", "dash", 2),
    )
    palette = pio.templates["plotly_white"].layout.colorway
    for i, (series, df) in enumerate(epochs.groupby("series", sort=False)):
        for j, (column, quantity, dash, col) in enumerate(lines):
            trace = go.Scatter(
                x=df["epoch"] + 1,
                y=df[column],
                mode="lines+markers",
                name=series,
                legendgroup=series,
                showlegend=j == 0,
                line=dict(dash=dash, color=palette[i % len(palette)]),
                hovertemplate=f"{quantity} {series}: %{{y:.4f}}<extra></extra>",
            )
            fig.add_trace(trace, 1, col)
    fig.update_layout(title="Validation per epoch", **LAYOUT)
    # Whole epochs only, half an epoch of room at each end: autorange put fractional ticks (0.6, 0.8 ...) at the
    # panel's corner, where the first one met the y axis's lowest label.
    last = int(epochs["epoch"].max()) + 1
    fig.update_xaxes(
        title_text="epoch", tickmode="linear", tick0=1, dtick=max(1, -(-last // 8)), range=[0.5, last + 0.5]
    )
    fig.update_yaxes(title_text="loss (solid: val, dotted: train)", row=1, col=1)
    # On the right: in the gap between the panels its labels would meet the left panel's.
    fig.update_yaxes(title_text="accuracy (solid), AUC (dashed)", side="right", row=1, col=2)
    return fig

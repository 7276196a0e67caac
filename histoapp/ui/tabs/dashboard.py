"""Dashboard tab: per-magnification metrics of chosen runs beside the paper's numbers, bars, ROC per fold,
calibration, confusion matrices, patient-level accuracy, significance between two runs, cross-dataset results,
and export as CSV / self-contained HTML. Everything is read from run folders through ``histoapp.analysis.results``."""

from __future__ import annotations

from functools import partial

import gradio as gr

from histoapp.analysis import results as dash
from trainer.metrics import METRIC_NAMES
from trainer.results import PAPER_COLUMNS

METRIC_CHOICES = [(METRIC_NAMES[m], m) for m in (*PAPER_COLUMNS, "patient_accuracy", "balanced_accuracy")]


# --- handlers ---------------------------------------------------------------------------------------------
def run_list(ctx, selected: list[str] | None = None):
    names = dash.runs_with_results(ctx.settings.runs_dir)
    keep = [n for n in (selected or []) if n in names] or names[:1]
    return gr.update(choices=names, value=keep)


def overview(ctx, names: list[str] | None, metric: str) -> tuple:
    """(table, bar figure, patient figure, cross-dataset table, group choices, model choices A, B, note)."""
    from histoapp.analysis import figures  # plotly: imported when the tab first draws, not at app start

    names = names or []
    runs_dir = ctx.settings.runs_dir
    summary = dash.summary(runs_dir, names)
    table = dash.display_table(summary)
    groups = dash.groups(runs_dir, names)
    models = dash.model_keys(runs_dir, names)
    note = "" if names else "Choose one or more runs with finished folds."
    return (
        table,
        figures.bars(summary, metric),
        figures.patient_figure(dash.patient_table(runs_dir, names)),
        dash.cross_dataset(runs_dir, names),
        gr.update(choices=groups, value=groups[0] if groups else None),
        gr.update(choices=models, value=models[0] if models else None),
        gr.update(choices=models, value=models[1] if len(models) > 1 else (models[0] if models else None)),
        note,
    )


def detail(ctx, key: str | None) -> tuple:
    """(ROC, calibration, confusion) of one run / model / magnification."""
    from histoapp.analysis import figures  # as in overview

    if not key:
        return figures.empty("ROC"), figures.empty("Calibration"), figures.empty("Confusion matrices")
    runs_dir = ctx.settings.runs_dir
    preds = dash.fold_predictions(runs_dir, key)
    return (
        figures.roc_figure(dash.roc_curves(preds), key),
        figures.calibration_figure(dash.calibration(preds), key),
        figures.confusion_figure(dash.confusion(runs_dir, key), dash.class_names(runs_dir, key), key),
    )


def compare(ctx, a: str | None, b: str | None) -> str:
    if not a or not b:
        return "Choose model A and model B."
    try:
        return dash.significance(ctx.settings.runs_dir, a, b)[1]
    except (ValueError, FileNotFoundError) as exc:
        return f"❌ {exc}"


def export_csv(ctx, names: list[str] | None) -> str | None:
    from histoapp.analysis import report  # on first export, not at app start

    if not names:
        return None
    return str(report.write_csv(dash.summary(ctx.settings.runs_dir, names), ctx.settings.runs_dir / dash.EXPORT_DIR))


def export_html(ctx, names: list[str] | None, metric: str, key: str | None, a: str | None, b: str | None) -> str | None:
    """The whole view as one HTML file (plotly.js inlined: it opens without a network)."""
    from histoapp.analysis import figures, report  # on first export, not at app start

    if not names:
        return None
    runs_dir = ctx.settings.runs_dir
    summary = dash.summary(runs_dir, names)
    figs = [figures.bars(summary, metric), figures.patient_figure(dash.patient_table(runs_dir, names))]
    if key:
        figs += list(detail(ctx, key))
    notes = []
    if a and b:
        notes.append(compare(ctx, a, b))
    text = report.html_report(
        f"histoapp dashboard: {', '.join(names)}",
        [
            ("Per-magnification results", dash.display_table(summary)),
            ("Cross-dataset evaluation", dash.cross_dataset(runs_dir, names)),
        ],
        figs,
        notes,
    )
    return str(report.write_html(text, runs_dir / dash.EXPORT_DIR))


# --- layout ----------------------------------------------------------------------------------------------
TABLE_STYLE = (
    "<style>#dash-table th, #dash-table td {white-space: nowrap; word-break: normal; overflow-wrap: normal;}"
    " #dash-table table {font-size: 0.85em;}</style>"
)


def build(ctx) -> None:
    gr.Markdown(
        "### Dashboard\nTest-set metrics of finished folds (mean ± sample std over patient-level folds), the paper's "
        "published figures beside ours where it gives them (— where it does not)."
    )
    names = dash.runs_with_results(ctx.settings.runs_dir)
    with gr.Row():
        runs = gr.Dropdown(names, value=names[:1], multiselect=True, label="Runs", scale=4, elem_id="dash-runs")
        refresh = gr.Button("Refresh", elem_id="dash-refresh")
        metric = gr.Dropdown(METRIC_CHOICES, value="accuracy", label="Bar chart metric")
    note = gr.Markdown()
    # Headers and cells stay on one line (wrapping broke narrow headers letter by letter); the table scrolls sideways.
    gr.HTML(TABLE_STYLE, container=False, padding=False)
    table = gr.Dataframe(label="Per-magnification results", interactive=False, wrap=False, elem_id="dash-table")
    with gr.Row():
        bars = gr.Plot(label="By magnification and model")
        patients = gr.Plot(label="Patient-level accuracy")
    group = gr.Dropdown([], label="Run / model / magnification for ROC, calibration and confusion matrices")
    with gr.Row():
        roc = gr.Plot(label="ROC")
        calib = gr.Plot(label="Calibration")
    confusion = gr.Plot(label="Confusion matrices")
    gr.Markdown("#### Significance between two models (McNemar, DeLong, Wilcoxon over folds)")
    with gr.Row():
        model_a = gr.Dropdown([], label="Model A (run / model)")
        model_b = gr.Dropdown([], label="Model B (run / model)")
        compare_btn = gr.Button("Compare")
    comparison = gr.Markdown()
    cross = gr.Dataframe(label="Cross-dataset evaluation (python -m trainer evaluate, e.g. on BACH)", interactive=False)
    with gr.Row():
        csv_btn = gr.Button("Export CSV")
        html_btn = gr.Button("Export HTML report")
        download = gr.File(label="Download", interactive=False)

    outs = [table, bars, patients, cross, group, model_a, model_b, note]
    refresh.click(partial(run_list, ctx), runs, runs).then(partial(overview, ctx), [runs, metric], outs)
    runs.change(partial(overview, ctx), [runs, metric], outs)
    metric.change(partial(overview, ctx), [runs, metric], outs)
    group.change(partial(detail, ctx), group, [roc, calib, confusion])
    compare_btn.click(partial(compare, ctx), [model_a, model_b], comparison)
    csv_btn.click(partial(export_csv, ctx), runs, download)
    html_btn.click(partial(export_html, ctx), [runs, metric, group, model_a, model_b], download)
    if ctx.tab is not None:  # the Tab this module is built in: refresh the run list whenever it is opened
        ctx.tab.select(partial(run_list, ctx), runs, runs).then(partial(overview, ctx), [runs, metric], outs)

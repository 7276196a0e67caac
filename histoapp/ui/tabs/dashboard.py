"""Dashboard tab: per-magnification metrics of chosen runs beside the paper's numbers, bars, ROC per fold,
calibration, confusion matrices, patient-level accuracy, significance between two runs, cross-dataset results,
and export as CSV / self-contained HTML. Everything is read from run folders (and the committed ``results/``)
through ``histoapp.analysis.results``; with no run chosen, one empty state says what to do instead."""

from __future__ import annotations

import contextlib
from pathlib import Path

import gradio as gr

from histoapp import auth
from histoapp.analysis import results as dash
from histoapp.settings import PROJECT_ROOT
from histoapp.ui.bind import bind
from histoapp.ui.context import AppContext
from histoapp.visitor_files import downloads_dir
from trainer.metrics import METRIC_NAMES
from trainer.results import PAPER_COLUMNS

METRIC_CHOICES = [(METRIC_NAMES[m], m) for m in (*PAPER_COLUMNS, "patient_accuracy", "balanced_accuracy")]


# --- handlers ---------------------------------------------------------------------------------------------
def choices(ctx: AppContext) -> list[str]:
    """The Runs dropdown: run folders with finished folds (newest first), then the committed results."""
    return dash.runs_with_results(ctx.settings.runs_dir) + dash.committed_results()


def run_list(ctx: AppContext, selected: list[str] | None = None):
    found = choices(ctx)
    keep = [n for n in (selected or []) if n in found] or [n for n in found if not dash.is_committed(n)][:1]
    return gr.update(choices=found, value=keep)


def open_committed(ctx: AppContext, key: str | None, selected: list[str] | None):
    """The empty state's Open: show a committed results folder (the Runs dropdown then draws it)."""
    return gr.update(choices=choices(ctx), value=[key] if key else selected or [])


def empty_state(ctx: AppContext) -> str:
    """What the Dashboard shows while no run is chosen: what it is for, how to get a run, what is committed."""
    runs_dir = ctx.settings.runs_dir
    where = runs_dir.relative_to(PROJECT_ROOT) if runs_dir.is_relative_to(PROJECT_ROOT) else runs_dir
    where = "the runs folder" if auth.mode(ctx.settings) == "public" else f"`{where}/`"  # no server path to visitors
    found = dash.runs_with_results(runs_dir)
    state = (
        f"**No run chosen**: pick one of the {len(found)} run(s) in Runs above."
        if found
        else f"**No runs with a finished fold yet** in {where} (setting `HISTOAPP_RUNS`)."
    )
    committed = "".join(f"\n  - `{dash.committed_label(k)}`" for k in dash.committed_results())
    return (
        f"{state}\n\nThe Dashboard compares finished cross-validation runs: per-magnification accuracy, "
        "precision, recall, F1, AUC and patient-level accuracy beside the paper's figures, ROC, calibration and "
        "confusion matrices, significance tests between two models, and CSV / HTML exports.\n\n"
        "- **Launch a run** on the **Train** tab (researcher role; the *small demo* preset takes 5 minutes on an "
        "idle CPU, up to an hour on a busy one). Its folds appear here as they finish: press Refresh.\n"
        + (
            "- **Or open the results committed with the project** (below; the README.md of each folder says how it was "
            "made). They hold the tables and per-fold scores, not the per-fold predictions that ROC, calibration "
            f"and confusion matrices need:{committed}"
            if committed
            else ""
        )
    )


def overview(ctx: AppContext, names: list[str] | None, metric: str) -> tuple:
    """(empty state, its box, the view, table, bar figure, patient figure, detail box, no-detail note, groups,
    comparison box, model A, model B, cross-dataset table). No run chosen: the empty state alone."""
    if not names:
        return empty_state(ctx), gr.update(visible=True), gr.update(visible=False), *[gr.skip()] * 10
    from histoapp.analysis import figures  # plotly: imported when the tab first draws, not at app start

    runs_dir = ctx.settings.runs_dir
    summary = dash.summary(runs_dir, names)
    groups = dash.groups(runs_dir, names)
    models = dash.model_keys(runs_dir, names)
    cross = dash.cross_dataset(runs_dir, names)
    return (
        "",
        gr.update(visible=False),
        gr.update(visible=True),
        table_view(summary),
        figures.bars(summary, metric),
        figures.patient_figure(dash.patient_table(runs_dir, names)),
        gr.update(visible=bool(groups)),
        ""
        if groups
        else "*No ROC, calibration or confusion matrices: they need per-fold predictions (`predictions.csv`), "
        "and committed results keep only `results.json`.*",
        gr.update(choices=groups, value=groups[0] if groups else None),
        gr.update(visible=bool(models)),
        gr.update(choices=models, value=models[0] if models else None),
        gr.update(choices=models, value=models[1] if len(models) > 1 else (models[0] if models else None)),
        gr.update(value=cross, visible=not cross.empty),
    )


def table_view(summary) -> str:
    """The table as the tab shows it, under the warning that some of its rows come from generated data."""
    import html

    from histoapp.analysis import report

    warning = dash.data_warning(summary)
    note = f"<p id='dash-data-warning'><strong>{html.escape(warning)}</strong></p>" if warning else ""
    return note + report.table_html(dash.display_table(summary))


def detail(ctx: AppContext, key: str | None) -> tuple:
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


def compare(ctx: AppContext, a: str | None, b: str | None) -> str:
    if not a or not b:
        return "Choose model A and model B."
    try:
        return dash.significance(ctx.settings.runs_dir, a, b)[1]
    except (ValueError, FileNotFoundError) as exc:
        return f"❌ {exc}"


def export_csv(ctx: AppContext, names: list[str] | None) -> str | None:
    from histoapp.analysis import report  # on first export, not at app start

    if not names:
        return None
    return str(report.write_csv(dash.summary(ctx.settings.runs_dir, names), downloads_dir(ctx.settings)))


def export_html(
    ctx: AppContext, names: list[str] | None, metric: str, key: str | None, a: str | None, b: str | None
) -> str | None:
    """The whole view as one HTML file (plotly.js inlined: it opens without a network)."""
    from histoapp.analysis import figures, report  # on first export, not at app start

    if not names:
        return None
    runs_dir = ctx.settings.runs_dir
    summary = dash.summary(runs_dir, names)
    figs = [figures.bars(summary, metric), figures.patient_figure(dash.patient_table(runs_dir, names))]
    if key:
        figs += list(detail(ctx, key))
    sections = []
    if a and b:
        # The pair chosen in the tab; one that cannot be compared (both sides the same model) is left out.
        with contextlib.suppress(ValueError, FileNotFoundError):
            sections.append((f"Significance: {a} vs {b}", dash.significance(runs_dir, a, b)[1]))
    text = report.html_report(
        f"histoapp dashboard: {', '.join(names)}",
        [
            ("Per-magnification results", dash.display_table(summary)),
            ("Cross-dataset evaluation", dash.cross_dataset(runs_dir, names)),
        ],
        figs,
        [n for n in (dash.data_warning(summary), dash.TABLE_LEGEND) if n],
        sections,
    )
    return str(report.write_html(text, downloads_dir(ctx.settings)))


def offered(path: str | None) -> tuple:
    """(download, message) after an export button: the file and its name, or why there is none."""
    if path is None:
        return (
            gr.update(value=None, visible=False),
            "⚠ Nothing to export: choose a run in Runs (or open the committed results) first.",
        )
    return gr.update(value=path, visible=True), f"Wrote `{Path(path).name}`: download it below."


# --- layout ----------------------------------------------------------------------------------------------
# Every column shows whole at 1400 px: one line per cell (no letter-by-letter wrapping), widths from the content
# (no ellipsis), a compact font; the short headers are spelled out in dash.TABLE_LEGEND under the table.
TABLE_STYLE = """<style>
#dash-table table {width: 100%; border-collapse: collapse; font-size: 0.9em; font-variant-numeric: tabular-nums;}
#dash-table th, #dash-table td {white-space: nowrap; padding: 4px 8px; border-bottom: 1px solid
  var(--border-color-primary); text-align: left;}
</style>"""


def offer_csv(ctx: AppContext, names: list[str] | None) -> tuple:
    """The CSV export button: (download, message)."""
    return offered(export_csv(ctx, names))


def offer_html(ctx: AppContext, names, metric, key, a, b) -> tuple:
    """The HTML export button: (download, message)."""
    return offered(export_html(ctx, names, metric, key, a, b))


def explain_tables(ctx: AppContext, chosen: str | None = None):
    """The explain-eval tables' picker: the committed ones and the runs' (``histoapp.analysis.explain_eval``)."""
    from histoapp.analysis.explain_eval import tables

    found = list(tables(ctx.settings.runs_dir))
    return gr.update(choices=found, value=chosen if chosen in found else (found[0] if found else None))


def explain_table(ctx: AppContext, label: str | None) -> str:
    """One explain-eval table (method x model, the trainer's layout), or what to run to get one."""
    from histoapp.analysis.explain_eval import table_markdown, tables

    path = tables(ctx.settings.runs_dir).get(label) if label else None
    if path is None:
        return "No explain-eval table yet: `python -m trainer explain-eval MODEL DATA --methods ...` writes one."
    return f"`{label}`\n\n" + table_markdown(path)


def rating_agreement(ctx: AppContext):
    """The raters' agreement on the maps' ratings (Annotate's 1-5), quadratic-weighted Cohen's kappa per pair."""
    import pandas as pd

    res = ctx.store.rating_agreement()

    def fmt(x) -> str:
        return "—" if x is None else f"{x:.3f}"

    rows = [[p["a"], p["b"], p["n"], fmt(p["agreement"]), fmt(p["kappa"])] for p in res["pairs"]]
    head = (
        f"{res['ratings']} rating(s) by {len(res['raters'])} rater(s) ({', '.join(res['raters']) or 'none yet'}). "
        f"Mean weighted kappa over the pairs: **{fmt(res['mean_kappa'])}** (— where a pair shares too few maps)."
    )
    return head, pd.DataFrame(rows, columns=["rater A", "rater B", "maps both rated", "exact agreement", "kappa"])


def build(ctx: AppContext) -> None:
    gr.Markdown(
        "### Dashboard\nTest-set metrics of finished folds (mean ± sample std over patient-level folds), the paper's "
        "published figures beside ours where it gives them (— where it does not)."
    )
    first = run_list(ctx)
    with gr.Row():
        runs = gr.Dropdown(
            first["choices"],
            value=first["value"],
            multiselect=True,
            label="Runs",
            info="Run folders with a finished fold, newest first; then the results committed in results/",
            scale=4,
            elem_id="dash-runs",
        )
        refresh = gr.Button("Refresh", elem_id="dash-refresh")
        metric = gr.Dropdown(METRIC_CHOICES, value="accuracy", label="Bar chart metric")
    # No run chosen: one explanation and the committed results to open, instead of empty plots.
    with gr.Column(visible=not first["value"], elem_id="dash-empty") as empty_box:
        empty = gr.Markdown(empty_state(ctx))
        committed = [(dash.committed_label(k), k) for k in dash.committed_results()]
        with gr.Row(visible=bool(committed)):
            pick = gr.Dropdown(
                committed,
                value=committed[0][1] if committed else None,
                scale=4,
                label="Committed results",
                elem_id="dash-committed",
            )
            open_btn = gr.Button("Open", elem_id="dash-open")
    with gr.Column(visible=bool(first["value"])) as view:
        gr.HTML(TABLE_STYLE, container=False, padding=False)
        gr.Markdown("#### Per-magnification results")
        table = gr.HTML(elem_id="dash-table")
        gr.Markdown(f"<small>{dash.TABLE_LEGEND}</small>")
        # Full width: their legends name every run / model (/ magnification), one entry each.
        bars = gr.Plot(label="By magnification and model", elem_id="dash-bars")
        patients = gr.Plot(label="Patient-level accuracy", elem_id="dash-patients")
        no_detail = gr.Markdown(elem_id="dash-no-detail")
        with gr.Column() as detail_box:
            group = gr.Dropdown(
                [],
                label="Run / model / magnification for ROC, calibration and confusion matrices",
                elem_id="dash-group",
            )
            with gr.Row():
                roc = gr.Plot(label="ROC", elem_id="dash-roc")
                calib = gr.Plot(label="Calibration", elem_id="dash-calibration")
            confusion = gr.Plot(label="Confusion matrices", elem_id="dash-confusion")
        with gr.Column() as compare_box:
            gr.Markdown("#### Significance between two models (McNemar, DeLong, Wilcoxon over folds)")
            with gr.Row():
                model_a = gr.Dropdown([], label="Model A (run / model)")
                model_b = gr.Dropdown([], label="Model B (run / model)")
                compare_btn = gr.Button("Compare")
            comparison = gr.Markdown()
        cross = gr.Dataframe(
            label="Cross-dataset evaluation (python -m trainer evaluate, e.g. on BACH)", interactive=False
        )
    with gr.Accordion("Explanations: which map is faithful for this model?", open=True, elem_id="dash-explain"):
        gr.Markdown(
            "`trainer explain-eval`'s table per method and model: ROAD (remove the pixels the map marks, most- and "
            "least-relevant first), deletion / insertion AUC, the sanity check (the map's rank correlation with the "
            "map of the model with randomised weights: a map that stays the same ignores the model), the share of "
            "map mass in the lesion, time per image. The Predict tab marks a method that fails both checks."
        )
        with gr.Row():
            ex_pick = gr.Dropdown([], label="Table", scale=4, elem_id="dash-explain-table-pick")
            ex_refresh = gr.Button("Refresh", size="sm", scale=1)
        ex_table = gr.Markdown(elem_id="dash-explain-table")
        gr.Markdown("#### Pathologists' ratings of the maps (Annotate): agreement between raters")
        rt_btn = gr.Button("Compute rating agreement", size="sm", elem_id="dash-rating-agreement")
        rt_md = gr.Markdown(elem_id="dash-rating-agreement-md")
        rt_table = gr.Dataframe(interactive=False, elem_id="dash-rating-agreement-table")
    with gr.Row():
        csv_btn = gr.Button("Export CSV", elem_id="dash-export-csv")
        html_btn = gr.Button("Export HTML report", elem_id="dash-export-html")
    export_note = gr.Markdown(elem_id="dash-export-note")
    download = gr.File(label="Download", interactive=False, visible=False, elem_id="dash-download")

    outs = [
        empty,
        empty_box,
        view,
        table,
        bars,
        patients,
        detail_box,
        no_detail,
        group,
        compare_box,
        model_a,
        model_b,
        cross,
    ]
    draw = bind(overview, ctx)
    refresh.click(bind(run_list, ctx), runs, runs).then(draw, [runs, metric], outs)
    open_btn.click(bind(open_committed, ctx), [pick, runs], runs)
    runs.change(draw, [runs, metric], outs)
    metric.change(draw, [runs, metric], outs)
    group.change(bind(detail, ctx), group, [roc, calib, confusion])
    compare_btn.click(bind(compare, ctx), [model_a, model_b], comparison)
    csv_btn.click(bind(offer_csv, ctx), runs, [download, export_note])
    html_btn.click(bind(offer_html, ctx), [runs, metric, group, model_a, model_b], [download, export_note])
    ex_refresh.click(bind(explain_tables, ctx), ex_pick, ex_pick).then(bind(explain_table, ctx), ex_pick, ex_table)
    ex_pick.change(bind(explain_table, ctx), ex_pick, ex_table)
    rt_btn.click(bind(rating_agreement, ctx), None, [rt_md, rt_table])
    if ctx.tab is not None:  # the Tab this module is built in: refresh the run list whenever it is opened
        ctx.tab.select(bind(run_list, ctx), runs, runs).then(draw, [runs, metric], outs)
        ctx.tab.select(bind(explain_tables, ctx), ex_pick, ex_pick)

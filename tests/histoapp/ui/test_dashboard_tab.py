"""The Dashboard shows the trainer's own results: its table equals results.json; exports; significance; with no
run chosen, one empty state; the committed results/ folders open."""

import json
import shutil
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from histoapp.analysis import results as dash
from histoapp.analysis.report import table_html
from histoapp.analysis.results import cell
from histoapp.settings import PROJECT_ROOT
from histoapp.ui.tabs import dashboard
from tests.histoapp.runs.tiny import make_finished_run, make_settings
from trainer.metrics import METRIC_NAMES, METRICS
from trainer.results import PAPER_COLUMNS, model_cell

# overview's outputs, by position (dashboard.overview's docstring)
EMPTY, EMPTY_BOX, VIEW, TABLE, BARS, PATIENTS, DETAIL_BOX, NO_DETAIL, GROUP, COMPARE_BOX = range(10)
CROSS = 12


@pytest.fixture
def ctx(runs_ctx):
    """The app context of these tests (see conftest: runs_ctx)."""
    return runs_ctx


@pytest.fixture(scope="module")
def finished_once(tmp_path_factory, tiny_data):
    return make_finished_run(make_settings(tmp_path_factory.mktemp("once"), tiny_data), "done", tiny_data)


@pytest.fixture
def finished(ctx, finished_once):
    """A copy in this test's runs folder (made once per module: it trains two models)."""
    return Path(shutil.copytree(finished_once, ctx.settings.runs_dir / "done"))


def test_table_equals_the_trainers_results_file(ctx, finished):
    results = json.loads((finished / "results.json").read_text())
    assert dashboard.run_list(ctx) == gr.update(choices=["done", *dash.committed_results()], value=["done"])
    out = dashboard.overview(ctx, ["done"], "accuracy")
    table = dash.display_table(dash.summary(ctx.settings.runs_dir, ["done"]))
    assert out[TABLE].endswith(table_html(table)) and out[VIEW]["visible"] and not out[EMPTY_BOX]["visible"]
    assert len(table) == len(results["rows"]) == 2
    for shown, row in zip(table.to_dict("records"), results["rows"], strict=True):
        assert (shown["Model"], shown["Mag."], shown["Folds"]) == (
            model_cell(row),
            row["magnification"],
            row["n_folds"],
        )
        for m in PAPER_COLUMNS:
            paper = row["paper"].get(m)
            assert shown[METRIC_NAMES[m]] == cell(row["mean"][m], row["std"][m]) + (
                f" ({paper:.3f})" if paper is not None else ""
            )
    # The CSV export holds the same numbers unrounded.
    exported = pd.read_csv(dashboard.export_csv(ctx, ["done"]))
    for (_, shown), row in zip(exported.iterrows(), results["rows"], strict=True):
        for m in METRICS:
            if row["mean"][m] is not None:
                assert shown[f"{m}_mean"] == pytest.approx(row["mean"][m], abs=1e-12)
    gen = "generated BreakHis-like"  # the tiny run trains on generated patches: its legend says so
    assert {t.name for t in out[BARS].data} >= {f"resnet18 (done; {gen})", f"resnet18-linear_probe (done; {gen})"}
    assert set(exported["data"]) == {gen} and set(exported["data_kind"]) == {"generated"}
    assert "Generated data: done trained and tested on patches generated" in out[TABLE]
    assert out[GROUP]["choices"] == ["done / resnet18 / 40X", "done / resnet18-linear_probe / 40X"]
    assert out[DETAIL_BOX]["visible"] and out[COMPARE_BOX]["visible"] and out[NO_DETAIL] == ""


def test_details_significance_and_html_report(ctx, finished):
    roc, calib, conf = dashboard.detail(ctx, "done / resnet18 / 40X")
    names = [t.name for t in roc.data]
    assert "mean" in names and any(n.startswith("fold") for n in names)
    assert len(conf.data) == 3  # two folds + their sum
    md = dashboard.compare(ctx, "done / resnet18", "done / resnet18-linear_probe")
    assert "McNemar" in md and "| 40X |" in md
    assert dashboard.compare(ctx, "done / resnet18", "done / resnet18").startswith("❌")
    path = dashboard.export_html(
        ctx, ["done"], "accuracy", "done / resnet18 / 40X", "done / resnet18", "done / resnet18-linear_probe"
    )
    text = Path(path).read_text()
    assert "Per-magnification results" in text and "resnet18-linear_probe" in text and "McNemar" in text
    assert "<script src=" not in text and "Plotly.newPlot" in text  # plotly.js inlined: opens offline
    # The same model on both sides cannot be compared: the report leaves the test out instead of the CLI's error.
    same = Path(
        dashboard.export_html(ctx, ["done"], "accuracy", None, "done / resnet18", "done / resnet18")
    ).read_text()
    assert "--model-a" not in same and "both sides" not in same and "McNemar" not in same
    assert same.index("Generated data: done") < same.index("Per-magnification results")


def test_cross_dataset_results_are_listed(ctx, finished, tiny_data):
    from trainer.evaluate import evaluate_checkpoint

    evaluate_checkpoint(
        finished / "resnet18" / "40X" / "fold0" / "best", tiny_data, magnification="100X", progress=False
    )
    table = dashboard.overview(ctx, ["done"], "f1")[CROSS]["value"]
    assert len(table) == 1 and table.loc[0, "model"] == "resnet18" and table.loc[0, "dataset"] == "breakhis"


def test_the_papers_figure_sits_beside_ours():
    from histoapp.analysis.results import display_table, summary
    from trainer.reference import paper_figures

    row = {c: None for c in summary("/nonexistent", []).columns}
    row.update(
        run="r",
        run_state="stopped / partial",
        data="real BreakHis",
        data_kind="real",
        model="resnet34",
        paper_model="ResNet34",
        magnification="40X",
        n_folds=5,
        accuracy_mean=0.95,
        accuracy_std=0.01,
        f1_mean=0.9,
        f1_std=0.02,
    )
    row.update({f"paper_{k}": v for k, v in paper_figures("resnet34", "40X").items()})
    shown = display_table(pd.DataFrame([row])).iloc[0]
    assert shown["Model"] == "ResNet34"  # the paper's name for it, as in results.md
    assert shown["Run"] == "r (stopped / partial)" and shown["Data"] == "real BreakHis"
    assert shown["Accuracy"] == f"0.950 ± 0.010 ({paper_figures('resnet34', '40X')['accuracy']:.3f})"
    assert shown["F1"] == "0.900 ± 0.020" and shown["Precision"] == "—"


def test_no_run_chosen_shows_one_empty_state_and_export_says_why(ctx):
    out = dashboard.overview(ctx, [], "accuracy")
    assert out[EMPTY_BOX]["visible"] and not out[VIEW]["visible"]  # no empty plots: the whole view is hidden
    assert all(o == gr.skip() for o in out[TABLE:])
    text = out[EMPTY]
    assert "No runs with a finished fold yet" in text and "**Train** tab" in text
    assert all(f"`{dash.committed_label(k)}`" in text for k in dash.committed_results())
    assert (
        dashboard.export_csv(ctx, []) is None and dashboard.export_html(ctx, [], "accuracy", None, None, None) is None
    )
    download, message = dashboard.offered(None)
    assert download["visible"] is False and "Nothing to export" in message


def test_committed_results_open_with_their_table_and_export(ctx):
    keys = dash.committed_results()
    assert {"results/", "results/idc/cnn/", "results/idc/vlm/"} <= set(keys)
    assert dashboard.open_committed(ctx, "results/idc/cnn/", [])["value"] == ["results/idc/cnn/"]
    committed = json.loads((PROJECT_ROOT / "results/results.json").read_text())
    out = dashboard.overview(ctx, ["results/"], "accuracy")
    for row in committed["rows"]:  # the committed numbers, formatted as for a run
        assert cell(row["mean"]["f1"], row["std"]["f1"]) in out[TABLE]
    assert not out[DETAIL_BOX]["visible"] and "predictions" in out[NO_DETAIL] and not out[COMPARE_BOX]["visible"]
    bars, folds = out[PATIENTS].data  # one bar per row, coloured by data source; each fold a dot
    assert len(bars.y) == len(committed["rows"]) and bars.name == "generated BreakHis-like"
    assert len(folds.x) == sum(r["n_folds"] for r in committed["rows"])  # per-fold patient accuracy
    exported = pd.read_csv(dashboard.export_csv(ctx, ["results/"]))
    assert set(exported["data"]) == {"generated BreakHis-like"}
    assert list(exported["roc_auc_mean"]) == pytest.approx([r["mean"]["roc_auc"] for r in committed["rows"]])
    with pytest.raises(FileNotFoundError):  # only the project's own folders, whatever a browser sends
        dash.results_of(ctx.settings.runs_dir, "../../etc/")

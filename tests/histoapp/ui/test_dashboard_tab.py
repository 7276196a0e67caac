"""The Dashboard shows the trainer's own results: its table equals results.json; exports; significance."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from histoapp.analysis.results import cell
from histoapp.ui.tabs import dashboard
from tests.histoapp.runs.tiny import make_finished_run, make_settings
from trainer.metrics import METRIC_NAMES, METRICS
from trainer.results import PAPER_COLUMNS


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
    assert dashboard.run_list(ctx)["choices"] == ["done"]
    table, bars, patients, cross, group, model_a, model_b, note = dashboard.overview(ctx, ["done"], "accuracy")
    assert len(table) == len(results["rows"]) == 2
    for shown, row in zip(table.to_dict("records"), results["rows"], strict=True):
        assert (shown["Model"], shown["Magnification"], shown["Folds"]) == (
            row["model"],
            row["magnification"],
            row["n_folds"],
        )
        for m in PAPER_COLUMNS:
            paper = row["paper"].get(m)
            assert shown[METRIC_NAMES[m]] == cell(row["mean"][m], row["std"][m]) + (
                f" (paper {paper:.4f})" if paper is not None else ""
            )
    # The CSV export holds the same numbers unrounded.
    exported = pd.read_csv(dashboard.export_csv(ctx, ["done"]))
    for (_, shown), row in zip(exported.iterrows(), results["rows"], strict=True):
        for m in METRICS:
            if row["mean"][m] is not None:
                assert shown[f"{m}_mean"] == pytest.approx(row["mean"][m], abs=1e-12)
    assert {t.name for t in bars.data} >= {"resnet18 (done)", "resnet18-linear_probe (done)"}
    assert group["choices"] == ["done / resnet18 / 40X", "done / resnet18-linear_probe / 40X"]


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


def test_cross_dataset_results_are_listed(ctx, finished, tiny_data):
    from trainer.evaluate import evaluate_checkpoint

    evaluate_checkpoint(
        finished / "resnet18" / "40X" / "fold0" / "best", tiny_data, magnification="100X", progress=False
    )
    table = dashboard.overview(ctx, ["done"], "f1")[3]
    assert len(table) == 1 and table.loc[0, "model"] == "resnet18" and table.loc[0, "dataset"] == "breakhis"


def test_the_papers_figure_sits_beside_ours():
    from histoapp.analysis.results import display_table, summary
    from trainer.reference import paper_figures

    row = {c: None for c in summary("/nonexistent", []).columns}
    row.update(
        run="r",
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
    assert shown["Paper model"] == "ResNet34"
    assert shown["Accuracy"] == f"0.9500 ± 0.0100 (paper {paper_figures('resnet34', '40X')['accuracy']:.4f})"
    assert shown["F1"] == "0.9000 ± 0.0200" and shown["Precision"] == "—"

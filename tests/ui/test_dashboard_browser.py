"""Real browser (Chromium + Playwright, 1400 px wide): the Dashboard's empty state opens the committed results;
the per-magnification table shows every column whole on one line; no plot of the Dashboard or the Train tab has a
legend over an axis title, a cut label or a cut title. Layout is checked by element geometry (tests/ui/geometry.py)."""

from pathlib import Path

import pytest

from histoapp.settings import Settings
from tests.histoapp.runs.tiny import make_data, make_finished_run, make_settings
from tests.ui.geometry import PLOT_PROBLEMS, TABLE_PROBLEMS

pytestmark = pytest.mark.browser

DASH_PLOTS = ("#dash-bars", "#dash-patients", "#dash-roc", "#dash-calibration", "#dash-confusion")
RUN = "tiny-resnet18-full-vs-probe"  # as long a name as the screenshot's


def _drawn(page, selectors, timeout=120_000):
    """Wait until each plot has its title (plotly has drawn it), then a moment for its margins to settle."""
    quoted = ", ".join(f"'{s}'" for s in selectors)
    page.wait_for_function(f"[{quoted}].every(s => document.querySelector(s + ' text.gtitle'))", timeout=timeout)
    page.wait_for_timeout(1000)


def _layout_problems(page, selectors) -> dict:
    return {s: p for s in selectors if (p := page.evaluate(PLOT_PROBLEMS, s))}


def _open(page, url, tab):
    page.set_default_timeout(120_000)  # a shared 2-core machine can take long to serve the first page
    page.goto(url)
    page.get_by_role("tab", name=tab).click()


def test_empty_state_explains_and_opens_the_committed_results(serve_app, page, tmp_path):
    _open(page, serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")), "Dashboard")
    empty = page.locator("#dash-empty")
    empty.get_by_text("No runs with a finished fold yet").wait_for()
    assert "Train" in empty.inner_text() and "results/idc/cnn/" in empty.inner_text()
    assert page.locator(".js-plotly-plot:visible").count() == 0  # no empty axes

    page.locator("#dash-export-csv").click()  # nothing to export: said, not silently ignored
    page.locator("#dash-export-note").get_by_text("Nothing to export").wait_for()

    page.locator("#dash-committed input").click()
    page.get_by_role("option", name="results/ —").click()
    page.locator("#dash-open").click()
    page.locator("#dash-table").get_by_text("400X").first.wait_for()
    assert not empty.is_visible()
    # The widest table the project has: 8 rows, the paper's figures in brackets.
    assert page.evaluate(TABLE_PROBLEMS, "#dash-table") == []
    assert page.locator("#dash-table th").all_inner_texts()[-2:] == ["AUC", "Patient acc."]
    _drawn(page, DASH_PLOTS[:2])
    assert _layout_problems(page, DASH_PLOTS[:2]) == {}
    page.locator("#dash-no-detail").get_by_text("predictions.csv").wait_for()  # no empty ROC plots either
    assert not page.locator("#dash-roc").is_visible()

    page.locator("#dash-export-csv").click()
    page.locator("#dash-export-note").get_by_text("Wrote").wait_for()


def test_confusion_matrices_of_five_folds_keep_their_class_names(page):
    """Six panels side by side at the Dashboard's width: each panel's row names used to fall under the panel
    before it ("malignant" read "alignant"). Drawn by plotly's own plotly.js, no app needed."""
    from histoapp.analysis.figures import confusion_figure

    matrices = {k: [[20 + k, 3], [4, 30 - k]] for k in range(5)}
    fig = confusion_figure(matrices, ["benign", "malignant"], f"{RUN} / resnet18 / 40X")
    page.set_content(f"<div id='fig' style='width: 1216px'>{fig.to_html(full_html=False, include_plotlyjs=True)}</div>")
    _drawn(page, ["#fig"])
    assert page.evaluate(PLOT_PROBLEMS, "#fig") == []
    assert sorted(page.locator("#fig .ytick").all_text_contents()) == ["benign", "malignant"]  # first panel only


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run (2 models, 2 folds at 40X) for the Train tab's and the Dashboard's plots."""
    tmp = tmp_path_factory.mktemp("dash")
    data = make_data(tmp / "bh" / "breakhis")
    settings = make_settings(tmp, data)
    make_finished_run(settings, RUN, data)
    return settings


@pytest.mark.slow
def test_dashboard_table_and_plots_fit_at_1400_px(serve_app, page, finished):
    _open(page, serve_app(finished), "Dashboard")
    page.locator("#dash-table").get_by_text("resnet18-linear_probe").wait_for(timeout=60_000)
    _drawn(page, DASH_PLOTS, timeout=180_000)  # ROC and calibration import scikit-learn on first use
    assert _layout_problems(page, DASH_PLOTS) == {}
    assert page.evaluate(TABLE_PROBLEMS, "#dash-table") == []

    # The run beside the committed results: long run and model names, and the paper's figures, in one table.
    page.locator("#dash-runs input").click()
    page.get_by_role("option", name="results/", exact=True).click()
    page.keyboard.press("Escape")
    page.locator("#dash-table").get_by_text("400X").first.wait_for()
    assert page.evaluate(TABLE_PROBLEMS, "#dash-table") == []
    # One bar per run / model / magnification, named on its own row (issue 23: the legend names the data source).
    page.locator("#dash-patients .ytick").get_by_text("alexnet 400X · results/").wait_for()
    _drawn(page, DASH_PLOTS[:2])
    assert _layout_problems(page, DASH_PLOTS[:2]) == {}


@pytest.mark.slow
def test_train_plots_share_the_layout(serve_app, page, finished):
    """The Train tab's loss and validation plots (the finished run is shown): the legend clear of the axis titles
    ("optimiser step", "epoch")."""
    _open(page, serve_app(finished), "Train")
    plots = ("#train-loss-plot", "#train-val-plot")
    _drawn(page, plots)
    assert page.locator("#train-loss-plot .xtitle").text_content() == "optimiser step"
    assert _layout_problems(page, plots) == {}


def _download(page, button: str) -> str:
    page.locator(button).click()
    page.locator("#dash-export-note").get_by_text("Wrote").wait_for()
    link = page.locator("#dash-download a").first
    link.wait_for()
    with page.expect_download() as dl:
        link.click()
    return dl.value.path()


def test_every_result_says_its_data_source_in_the_table_the_chart_and_the_exports(serve_app, page, tmp_path):
    """The committed results/ come from generated BreakHis-like patches, results/idc/cnn/ from real IDC tissue:
    each row says which (the table, the patient chart's colours and legend, the CSV and the HTML report), and
    the generated rows carry a warning beside the paper's figures."""
    import pandas as pd

    _open(page, serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")), "Dashboard")
    page.locator("#dash-committed input").click()
    page.get_by_role("option", name="results/ —").click()
    page.locator("#dash-open").click()
    page.locator("#dash-table").get_by_text("400X").first.wait_for()
    page.locator("#dash-runs input").click()
    page.get_by_role("option", name="results/idc/cnn/", exact=True).click()
    page.keyboard.press("Escape")
    page.locator("#dash-table").get_by_text("results/idc/cnn/", exact=True).wait_for()

    rows = [r.split("\t")[:2] for r in page.locator("#dash-table tbody tr").all_inner_texts()]
    assert len(rows) == 9 and all(
        data == ("generated BreakHis-like" if run == "results/" else "real IDC") for run, data in rows
    ), rows
    warning = page.locator("#dash-data-warning").inner_text()
    assert "Generated data: results/ trained and tested on patches generated" in warning and "idc" not in warning

    _drawn(page, ["#dash-patients"])
    assert _layout_problems(page, ["#dash-patients"]) == {}
    assert page.locator("#dash-patients .legendtext").all_text_contents() == [
        "generated BreakHis-like",
        "real IDC",
        "one fold",
    ]
    assert page.evaluate(BAR_COLOURS, "#dash-patients") == [["rgb(255, 127, 14)"], ["rgb(31, 119, 180)"]]

    csv = pd.read_csv(_download(page, "#dash-export-csv"))
    assert sorted(zip(csv["run"], csv["data"], strict=True)) == sorted(map(tuple, rows))
    report = Path(_download(page, "#dash-export-html")).read_text()
    assert "<th>Data</th>" in report and "Generated data: results/" in report
    assert report.count("<td>generated BreakHis-like</td>") == 8 and report.count("<td>real IDC</td>") == 1


# Each bar trace's fill colours (one list per trace; its bars, not its error bars).
BAR_COLOURS = """(s) => [...document.querySelectorAll(s + ' g.trace.bars')].map(
  t => [...new Set([...t.querySelectorAll('g.point path')].map(p => getComputedStyle(p).fill))])"""


def test_many_runs_keep_the_patient_chart_readable(page):
    """Seven runs of two models (14 series, 5 folds each; plotly's palette has 10 colours): each series named on
    its own row, nothing overlapping or cut, one colour per data source. Drawn by plotly.js alone, no app."""
    import pandas as pd

    from histoapp.analysis.figures import patient_figure

    rows = [
        {
            "run": f"run-{r}-{'generated' if r % 2 else 'idc'}",
            "data": "generated BreakHis-like" if r % 2 else "real IDC",
            "data_kind": "generated" if r % 2 else "real",
            "model": model,
            "magnification": "40X",
            "fold": k,
            "patient accuracy": 0.6 + 0.05 * k,
        }
        for r in range(7)
        for model in ("resnet18", "resnet18-linear_probe")
        for k in range(5)
    ]
    fig = patient_figure(pd.DataFrame(rows))
    page.set_content(f"<div id='fig' style='width: 1216px'>{fig.to_html(full_html=False, include_plotlyjs=True)}</div>")
    _drawn(page, ["#fig"])
    assert page.evaluate(PLOT_PROBLEMS, "#fig") == []
    assert page.locator("#fig .ytick").count() == 14
    assert len({c for trace in page.evaluate(BAR_COLOURS, "#fig") for c in trace}) == 2

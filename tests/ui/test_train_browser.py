"""Real browser (Chromium + Playwright): start the "quick demo" preset from the Train tab, watch the loss plot
gain points, stop it; then find the per-magnification table of a finished tiny run on the Dashboard."""

import re

import pytest

from tests.histoapp.runs.tiny import make_data, make_finished_run, make_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POINTS = "#train-loss-plot g.scatterlayer g.trace g.points path"


def _kill_runs(settings):
    from histoapp.runs import RunManager

    manager = RunManager(settings, background=False)
    for info in manager.list_runs():
        if info.active:
            manager.stop(info.name, force=True)


def test_quick_demo_live_then_stop_and_dashboard_table(serve_app, page, tmp_path, monkeypatch, request):
    monkeypatch.setenv("HISTOAPP_RUN_THREADS", "1")  # a polite run on a shared machine
    data = make_data(tmp_path / "bh" / "breakhis")
    settings = make_settings(tmp_path, data)
    make_finished_run(settings, "tiny-finished", data)
    url = serve_app(settings)
    request.addfinalizer(lambda: _kill_runs(settings))  # a failed test must not leave a training process behind

    page.goto(url)
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Preset").wait_for()
    box = page.get_by_label("Run name")  # blank: the quick demo preset's name is stamped at launch
    assert box.input_value() == "" and "quick_demo-<date>-<time>" in box.get_attribute("placeholder")
    page.locator("#train-launch").click()
    page.locator("#train-message").get_by_text("🚀").wait_for(timeout=60_000)
    name = re.search(r"quick_demo-\d{8}-\d{6}(-\d+)?", page.locator("#train-message").inner_text())[0]
    # The live view follows the new run (not the finished one shown before) once its process is training.
    page.locator("#train-status").get_by_text(f"{name} — running").wait_for(timeout=240_000)

    page.wait_for_function(f"document.querySelectorAll('{POINTS}').length >= 1", timeout=240_000)
    first = page.locator(POINTS).count()
    page.wait_for_function(f"document.querySelectorAll('{POINTS}').length > {first}", timeout=120_000)
    assert page.locator("#train-status").get_by_text(name).count() == 1
    page.screenshot(path=str(tmp_path / "train.png"))

    page.locator("#train-stop").click()
    page.locator("#train-message").get_by_text("Stop requested").wait_for()
    page.locator("#train-status").get_by_text(re.compile(r"— stopped")).wait_for(timeout=120_000)

    page.get_by_role("tab", name="Dashboard").click()
    table = page.locator("#dash-table")
    table.get_by_text("Patient acc.").wait_for(timeout=60_000)
    table.get_by_text("40X").first.wait_for()
    table.get_by_text("resnet18-linear_probe").first.wait_for()

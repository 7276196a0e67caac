"""The Train tab's run controls in a real browser (Chromium + Playwright), on runs made without training (a
stand-in process for a running one, tests/histoapp/runs/tiny.py): after a reload, or for a visitor who opens the
page after the run was launched, the Run dropdown lists it, selected, with a steady ETA shown as a range while
unsure and the log's newest lines, and Stop reaches it; Delete asks before it removes anything."""

from __future__ import annotations

import re

import pytest

from tests.histoapp.runs.tiny import make_data, make_finished_run, make_running_run, make_settings

pytestmark = pytest.mark.browser


def _train_tab(page, url):
    page.set_default_timeout(120_000)  # a shared 2-core machine can take long to serve the first page
    page.goto(url)
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Preset").wait_for()


def _selected_run(page) -> str:
    return page.locator("#train-run input").input_value()


@pytest.fixture
def settings(tmp_path):
    data = make_data(tmp_path / "bh" / "breakhis")
    return make_settings(tmp_path, data), data


def test_a_run_launched_after_the_page_was_built_is_selected_on_load_and_stops(serve_app, page, settings):
    settings, data = settings
    url = serve_app(settings)  # the app (and its dropdown) built before the run exists: as for a second visitor
    proc = make_running_run(settings, "live-run", data, steps=12, step_s=2.0)
    try:
        log = settings.runs_dir / "live-run" / "log.txt"
        log.write_text("".join(f"log line {i}\n" for i in range(1, 201)))
        _train_tab(page, url)
        page.locator("#train-status").get_by_text("live-run — running").wait_for()
        assert _selected_run(page) == "live-run"
        # ETA from the measured 2 s per step, 388 steps left (2 folds x 2 epochs x 100); no fold finished yet: a range.
        status = page.locator("#train-status").inner_text()
        eta = re.search(r"ETA (\S+) – (\S+) ·", status)
        assert eta, status
        # The log box shows the newest lines: scrolled to its end.
        page.wait_for_function(
            "(() => { const t = document.querySelector('#train-log textarea');"
            " return t.value.endsWith('log line 200') && t.scrollHeight > t.clientHeight"
            " && t.scrollTop + t.clientHeight >= t.scrollHeight - 2; })()"
        )

        page.reload()  # a reload: still there and selected
        page.get_by_role("tab", name="Train").click()
        page.locator("#train-status").get_by_text("live-run — running").wait_for()
        page.locator("#train-stop").click()
        page.locator("#train-message").get_by_text("Stop requested for live-run").wait_for()
        assert (settings.runs_dir / "live-run" / "STOP").exists()  # what the engine ends the run on
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_delete_asks_first_and_cancel_keeps_the_run(serve_app, page, settings):
    settings, data = settings
    run = make_finished_run(settings, "keep-me", data)
    _train_tab(page, serve_app(settings))
    page.locator("#train-status").get_by_text("keep-me — finished").wait_for()

    delete = page.get_by_role("button", name="Delete", exact=True)
    delete.click()
    box = page.locator("#train-delete-box")
    box.get_by_text("Delete keep-me for good?").wait_for()
    assert re.search(r"with \d+ of \d+ fold\(s\) finished", box.inner_text())
    assert run.is_dir()  # one click deletes nothing
    page.locator("#train-delete-cancel").click()
    page.locator("#train-message").get_by_text("Nothing deleted.").wait_for()
    assert run.is_dir() and not box.is_visible()

    delete.click()
    page.locator("#train-delete-confirm").click()
    page.locator("#train-message").get_by_text("keep-me deleted").wait_for()
    assert not run.exists()

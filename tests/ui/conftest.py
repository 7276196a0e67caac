"""Real-browser fixtures: the app served on a free local port, and headless Debian Chromium via Playwright."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("HISTOAPP_CHROMIUM", "/usr/bin/chromium")


def _chromium_available() -> bool:
    return os.path.exists(CHROMIUM) or shutil.which("chromium") is not None


@pytest.fixture
def serve_app():
    """``url = serve_app(settings)``: build and launch the Blocks app in this process (background thread)."""
    from histoapp import public
    from histoapp.ui.app import build_app

    # The public demo's rate limit is the process's (one app per process); apps served here share this process,
    # so each test starts with no predictions counted (an earlier public test's would count against its limit).
    public._predictions.clear()
    demos = []

    def _serve(settings, **launch_kwargs):
        demo = build_app(settings)
        demo.queue()
        demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True, **launch_kwargs)
        demos.append(demo)
        return demo.local_url

    yield _serve
    for demo in demos:
        demo.close()


@pytest.fixture(scope="session")
def browser():
    if not _chromium_available():
        pytest.skip("Debian chromium not installed (apt-get install chromium); browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
            headless=True,
            args=["--no-sandbox", "--disable-gpu"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()

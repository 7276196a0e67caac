"""What every screenshot script does: serve the app on a free local port and open it in headless Debian Chromium."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = os.environ.get("HISTOAPP_CHROMIUM", "/usr/bin/chromium")


@contextmanager
def app_page(settings, *, init_script: str | None = None, timeout_ms: int = 300_000):
    """Yield a Playwright page showing the app built with ``settings``; the server closes afterwards."""
    from playwright.sync_api import sync_playwright

    from histoapp.ui.app import build_app

    demo = build_app(settings)
    demo.queue()
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
            page.set_default_timeout(timeout_ms)
            if init_script:
                page.add_init_script(init_script)
            page.goto(demo.local_url)
            yield page
            browser.close()
    finally:
        demo.close()

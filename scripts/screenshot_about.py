"""Screenshot of the About tab (the study, the demo models' cards, the disclaimer) -> docs/about.png.

    uv run python scripts/screenshot_about.py [--out docs/about.png]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> None:
    from playwright.sync_api import sync_playwright

    from histoapp.settings import Settings
    from histoapp.ui.app import build_app

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "about.png"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    demo = build_app(Settings(runs_dir=tmp / "runs", data_dir=tmp / "data"))
    demo.queue()
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=a.chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
            page.goto(demo.local_url)
            page.get_by_role("tab", name="About").click()
            page.get_by_text("Model cards").last.wait_for()
            for acc in page.locator("button.label-wrap").all():  # open the model cards
                if acc.is_visible():
                    acc.click()
            page.wait_for_timeout(1000)
            page.screenshot(path=a.out, full_page=True)
            browser.close()
    finally:
        demo.close()
    print(a.out)


if __name__ == "__main__":
    main()

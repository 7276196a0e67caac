"""Screenshot of the Predict tab on a bundled example (headless Debian Chromium via Playwright) -> docs/predict.png.

    uv run python scripts/screenshot_predict.py [--example malignant_DC_40X_1.jpg] [--out docs/predict.png]
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
    from histoapp.ui.examples import EXAMPLES_DIR

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--example", default="malignant_DC_40X_1.jpg")
    ap.add_argument("--out", default=str(ROOT / "docs" / "predict.png"))
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
            page.locator("#predict-files input[type=file]").set_input_files(str(EXAMPLES_DIR / a.example))
            for side in ("cnn", "vlm"):
                img = page.locator(f"#predict-{side}-overlay img").first
                img.wait_for(state="visible", timeout=300_000)
            page.locator("#predict-vlm-answer textarea").wait_for()
            page.wait_for_timeout(1500)  # let the images finish fading in
            page.screenshot(path=a.out, full_page=True)
            browser.close()
    finally:
        demo.close()
    print(a.out)


if __name__ == "__main__":
    main()

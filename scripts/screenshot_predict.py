"""Screenshot of the Predict tab on a bundled example (headless Debian Chromium via Playwright) -> docs/predict.png.

uv run python scripts/screenshot_predict.py [--example idc_malignant_40X_patient13401.png] [--out docs/predict.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _browser import ROOT, app_page


def main(argv: list[str] | None = None) -> None:
    from histoapp.settings import Settings
    from histoapp.ui.examples import EXAMPLES_DIR

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--example", default="idc_malignant_40X_patient13401.png")
    ap.add_argument("--out", default=str(ROOT / "docs" / "predict.png"))
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    with app_page(Settings(runs_dir=tmp / "runs", data_dir=tmp / "data")) as page:
        page.locator("#predict-files input[type=file]").set_input_files(str(EXAMPLES_DIR / a.example))
        for side in ("cnn", "vlm"):
            page.locator(f"#predict-{side}-overlay img").first.wait_for(state="visible")
        page.locator("#predict-vlm-answer textarea").wait_for()
        page.wait_for_timeout(1500)  # let the images finish fading in
        page.screenshot(path=a.out, full_page=True)
    print(a.out)


if __name__ == "__main__":
    main()

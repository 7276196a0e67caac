"""Screenshot of the About tab (the study, the demo models' cards, the disclaimer) -> docs/about.png.

uv run python scripts/screenshot_about.py [--out docs/about.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _browser import ROOT, app_page


def main(argv: list[str] | None = None) -> None:
    from histoapp.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "about.png"))
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    with app_page(Settings(runs_dir=tmp / "runs", data_dir=tmp / "data")) as page:
        page.get_by_role("tab", name="About").click()
        page.get_by_text("Model cards").last.wait_for()
        for acc in page.locator("button.label-wrap").all():  # open the model cards
            if acc.is_visible():
                acc.click()
        page.wait_for_timeout(1000)
        page.screenshot(path=a.out, full_page=True)
    print(a.out)


if __name__ == "__main__":
    main()

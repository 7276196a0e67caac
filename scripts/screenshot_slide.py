"""Screenshot of the Slide tab on the bundled example slide, scored by both demo models, with the tiles under a
click (headless Debian Chromium via Playwright) -> docs/slide.png.

uv run python scripts/screenshot_slide.py [--slide assets/examples/slides/idc_patient8916_mosaic.tif] [--out docs/slide.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _browser import ROOT, app_page


def main(argv: list[str] | None = None) -> None:
    from histoapp.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slide", default=str(ROOT / "assets" / "examples" / "slides" / "idc_patient8916_mosaic.tif"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "slide.png"))
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    with app_page(Settings(runs_dir=tmp / "runs", data_dir=tmp / "data")) as page:
        page.get_by_role("tab", name="Slide").click()
        page.locator("#slide-file input[type=file]").set_input_files(a.slide)
        page.locator("#slide-vlm input").click()  # the VLM is off by default: the screenshot shows both families
        page.get_by_role("option").filter(has_text="demo").first.click()
        page.locator("#slide-run").click()
        for side in ("cnn", "vlm"):
            page.locator(f"#slide-{side}-map img").first.wait_for(state="visible")
        page.locator("#slide-viewer .openseadragon-canvas").first.wait_for()
        heat = page.locator("#slide-cnn-map img").first
        box = heat.bounding_box()
        heat.click(position={"x": box["width"] * 0.75, "y": box["height"] * 0.12})  # the upper right, IDC there
        page.locator("#slide-region img").first.wait_for(state="visible")
        page.locator("#slide-region").scroll_into_view_if_needed()  # the gallery loads its images lazily
        page.wait_for_function(
            "() => [...document.querySelectorAll('#slide-region img')].every((i) => i.complete && i.naturalWidth > 0)",
            timeout=60_000,
        )
        page.wait_for_timeout(2500)  # let the viewer's tiles finish fading in
        page.screenshot(path=a.out, full_page=True)
    print(a.out)


if __name__ == "__main__":
    main()

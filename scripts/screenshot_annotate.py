"""Regenerate docs/annotate.png: the Annotate tab on generated BreakHis-like patches (headless Chromium).

    uv run python scripts/screenshot_annotate.py [--out docs/annotate.png]

The patches are synthetic (``trainer.data.synthetic``), not real tissue; two annotators' labels are made with
the store API so the agreement panel has something to show."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _browser import ROOT, app_page

from histoapp.settings import Settings
from histoapp.store import open_store
from trainer.data.synthetic import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "annotate.png"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    data = tmp / "data"
    root = generate(data / "patches", patients_per_subtype=1, images_per_magnification=2, size=(350, 230), seed=5)
    settings = Settings(runs_dir=tmp / "runs", data_dir=data)
    store = open_store(settings.database_url)
    store.import_folder(root)
    ids = store.queue(mode="all", limit=None)
    mixed = ids[::7]  # both classes, several subtypes
    for k, i in enumerate(mixed[:10]):
        truth = store.image(i)["source_label"]
        store.annotate(i, "dr_a", label=truth)
        store.annotate(i, "dr_b", label=truth if k % 4 else 1 - truth)
    for k, i in enumerate(mixed[:6]):
        store.annotate(i, "dr_demo", label=store.image(i)["source_label"], blur=k == 2)
    store.close()

    with app_page(settings, init_script="localStorage.setItem('histoapp-annotator', 'dr_demo')") as page:
        page.get_by_role("tab", name="Annotate").click()
        page.locator("#ann-info").filter(has_text="Image #").wait_for()
        page.get_by_text("Agreement", exact=True).click()
        page.get_by_role("button", name="Compute agreement").click()
        page.get_by_text("Fleiss' kappa over").wait_for()
        page.screenshot(path=args.out, full_page=True)
    print(args.out)


if __name__ == "__main__":
    main()

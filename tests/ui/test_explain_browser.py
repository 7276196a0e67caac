"""Explanations you can check (issue 27) in a real browser (headless Debian Chromium), with the bundled demo
models: the faithfulness score appears under the CNN's and the VLM's map in Predict; in Annotate a map is shown
with its score (hidden in blind mode), rated, the rating undone, saved again and exported (the JSON download
parsed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from histoapp.settings import Settings
from histoapp.ui.examples import list_examples

pytestmark = pytest.mark.browser
TIMEOUT = 300_000  # the first map check loads both models and scores each map on a shared CPU
SCORE = re.compile(r"Faithfulness [+-]\d\.\d\d \(ROAD\): removing the 20 % the map marks (drops|raises) P\(")


def _malignant_example() -> str:
    return next(e for e in list_examples() if e["label"] == "malignant")["path"]


def test_the_score_appears_under_each_map_in_predict(serve_app, page, tmp_path):
    page.goto(serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")))
    page.get_by_role("tab", name="Predict").wait_for()
    page.locator("#predict-files input[type=file]").set_input_files(_malignant_example())
    for side in ("cnn", "vlm"):
        page.locator(f"#predict-{side}-overlay img").first.wait_for(state="visible", timeout=TIMEOUT)
        # A plain prediction does not score its maps: the line says how to.
        page.locator(f"#predict-{side}-faith").filter(has_text="not checked yet").wait_for(timeout=TIMEOUT)
    page.locator("#predict-check-maps").click()
    for side in ("cnn", "vlm"):
        line = page.locator(f"#predict-{side}-faith").filter(has_text=SCORE)
        line.wait_for(timeout=TIMEOUT)
        assert "removing the 20 % it leaves" in line.inner_text()
    assert page.locator("#predict-errors").inner_text().strip() == ""


def test_a_map_rating_is_saved_undone_and_exported(serve_app, page, tmp_path):
    from histoapp.store import open_store

    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")
    store = open_store(settings.database_url)
    image_id = store.add_image(_malignant_example(), dataset="idc", magnification="40X")
    store.close()
    page.goto(serve_app(settings))
    page.get_by_role("tab", name="Annotate").click()
    page.locator("#ann-progress").filter(has_text=re.compile("images")).wait_for()
    name = page.locator("#ann-annotator input, #ann-annotator textarea").first
    name.fill("dr_rater")
    name.press("Enter")
    page.locator("#ann-info").filter(has_text=f"Image #{image_id}").wait_for()

    page.get_by_text("Rate a model's map of this patch (optional)").click()
    page.locator("#ann-map-show").click()
    info = page.locator("#ann-map-info")
    info.filter(has_text=SCORE).wait_for(timeout=TIMEOUT)
    assert f"Map of image #{image_id}" in info.inner_text() and "Grad-CAM" in info.inner_text()
    page.locator("#ann-map img").first.wait_for(state="visible")
    # Blind mode hides the score while rating, and shows it again when switched off.
    page.get_by_label("Blind mode (hide model predictions, source labels and the maps' faithfulness)").check()
    info.filter(has_text="hidden while you rate").wait_for()
    assert "Faithfulness" not in info.inner_text()

    page.locator("#ann-map-rating").get_by_text("4: mostly on it").click()
    page.locator("#ann-map-note input, #ann-map-note textarea").first.fill("on the tumour nests")
    page.locator("#ann-map-save").click()
    status = page.locator("#ann-map-status")
    status.filter(has_text=f"Saved your rating 4/5 of the Grad-CAM map of image #{image_id}").wait_for()
    page.locator("#ann-undo").click()
    page.locator("#ann-status").filter(has_text=f"Undo: image #{image_id} — removed the map rating").wait_for()
    db = open_store(settings.database_url)
    assert db.map_ratings() == []
    db.close()
    page.locator("#ann-map-save").click()  # saved again (a new click: a new submission id)
    page.locator("#ann-map-status").filter(has_text="Saved your rating 4/5").wait_for()

    page.get_by_text("Export", exact=True).click()
    page.locator("#ann-export-json").click()
    link = page.locator("#ann-export-file a").first
    link.wait_for()
    with page.expect_download() as dl:
        link.click()
    doc = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    (image,) = [i for i in doc["images"] if i["id"] == image_id]
    (rating,) = image["map_ratings"]
    assert (rating["rater"], rating["method"], rating["rating"], rating["note"]) == (
        "dr_rater",
        "Grad-CAM",
        4,
        "on the tumour nests",
    )
    assert rating["model"] == "demo:demo-cnn" and -0.5 <= rating["faithfulness"] <= 0.5  # stored, though hidden

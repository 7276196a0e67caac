"""The Slide tab in real Chromium on a generated pyramidal TIFF of bundled IDC tissue: the heat map appears, a
click on it shows the tiles there with their maps, the GeoJSON download parses, and the OpenSeadragon viewer
loads its tiles from the app's route (answered 200). Also the API: a bad slide is refused with its reason and
the next request is served."""

import json
import re
from pathlib import Path

import pytest

from histoapp.settings import Settings
from tests import slide_data


@pytest.fixture(scope="module")
def slide_file(tmp_path_factory):
    return slide_data.idc_slide(tmp_path_factory.mktemp("slide") / "patient8863.tif", window=600)


def test_slide_tab_heat_map_tiles_geojson_and_viewer(serve_app, page, tmp_path, slide_file):
    url = serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    tiles = []
    page.on("response", lambda r: tiles.append(r.status) if "/image_files/" in r.url else None)
    page.goto(url)
    page.get_by_role("tab", name="Slide").click()
    page.locator("#slide-file input[type=file]").set_input_files(str(slide_file))
    page.locator("#slide-run").click()

    heat = page.locator("#slide-cnn-map img")
    heat.wait_for(state="visible", timeout=120_000)
    assert "tissue area" in page.locator("#slide-summary").inner_text()
    assert page.locator("#slide-top img").count() > 0  # the most suspicious tiles

    # The viewer: OpenSeadragon's canvas, fed tile by tile from the app's route.
    page.locator("#slide-viewer .openseadragon-canvas").first.wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('#slide-viewer canvas').length > 0")
    page.wait_for_timeout(1500)
    assert tiles and all(s == 200 for s in tiles), tiles

    # Click the middle of the heat map: the tiles there, each with its Grad-CAM.
    box = heat.bounding_box()
    heat.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    page.locator("#slide-region img").first.wait_for(timeout=60_000)
    assert "tiles nearest" in page.locator("#slide-region-note").inner_text()
    assert page.locator("#slide-region img").count() >= 1
    before = page.locator("#slide-region-note").inner_text()

    # A click in the viewer: the tiles at that place of the slide.
    canvas = page.locator("#slide-viewer .openseadragon-canvas").first
    cb = canvas.bounding_box()
    canvas.click(position={"x": cb["width"] * 0.3, "y": cb["height"] * 0.7})
    changed = "(b) => document.querySelector('#slide-region-note').innerText !== b"
    page.wait_for_function(changed, arg=before, timeout=60_000)
    assert re.search(r"tiles nearest x=\d+, y=\d+", page.locator("#slide-region-note").inner_text())

    # Exports: the GeoJSON parses as QuPath's FeatureCollection.
    page.locator("#slide-export").click()
    page.locator("#slide-files a").first.wait_for(timeout=60_000)
    link = page.locator("#slide-files tr").filter(has_text="geojson").locator("a").first
    with page.expect_download() as dl:
        link.click()
    geo = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert geo["type"] == "FeatureCollection"
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in geo["features"])


def test_slide_api_refuses_a_bad_slide_then_serves_the_next(serve_app, tmp_path, slide_file):
    from gradio_client import Client, handle_file

    url = serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    client = Client(url, verbose=False)
    assert "/score_slide" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    bomb = slide_data.huge_png(tmp_path / "bomb.png")
    with pytest.raises(Exception, match=r"refused.*(pixels|MP)"):
        client.predict(handle_file(str(bomb)), api_name="/score_slide")
    out = client.predict(handle_file(str(slide_file)), api_name="/score_slide")
    assert out["mpp"] == 4.0 and out["cnn"]["summary"]["tissue_tiles"] > 0 and out["cnn"]["top"]

"""trainer.slide.exports: the tile table, the heat map and QuPath-style GeoJSON read back by shapely."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from shapely import box, unary_union
from shapely.geometry import shape

from tests.trainer.slide.conftest import EMPTY
from trainer.slide import open_slide, score_slide
from trainer.slide.exports import CSV_COLUMNS, malignant_tiles


@pytest.fixture(scope="module")
def scored(mosaic, demo_cnn):
    with open_slide(mosaic[0]) as slide:
        return score_slide(demo_cnn, slide, context=True), slide.thumbnail(200)


def test_the_tile_table_has_every_tile_in_level0_pixels(scored, tmp_path):
    result, _ = scored
    with open(result.to_csv(tmp_path / "tiles.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {"x", "y", "width", "height", "prob_malignant", "abstain", "ood"} <= set(rows[0])
    assert len(rows) == len(result.tiles)
    for row, t in zip(rows, result.tiles, strict=True):
        assert (int(row["x"]), int(row["y"]), int(row["width"]), int(row["height"])) == (t.x, t.y, t.width, t.height)
        if t.tissue:
            assert float(row["prob_malignant"]) == pytest.approx(t.prob_malignant, abs=1e-5)
        else:
            assert row["prob_malignant"] == "" and row["tissue"] == "0"


def test_the_heatmap_is_nan_over_background(scored):
    result, _ = scored
    g = result.grid
    h = result.heatmap((g.width, g.height))  # one pixel a level-0 pixel
    assert h.shape == (g.height, g.width)
    for t in result.tiles:
        cell = h[t.y : t.y + t.height, t.x : t.x + t.width]
        if t.tissue:
            assert np.allclose(cell, t.prob_malignant)
        else:
            assert np.isnan(cell).all()
    small = result.heatmap(40)
    assert max(small.shape) == 40 and np.nanmax(small) <= 1.0


def test_the_heatmap_png_has_the_thumbnail_size(scored, tmp_path):
    result, thumb = scored
    path = result.heatmap_png(tmp_path / "h.png", thumb, 0.6)
    im = Image.open(path)
    assert im.size == thumb.size and im.mode == "RGB"
    col, row = next(iter(EMPTY))  # background stays the thumbnail
    sx, sy = thumb.width / result.grid.width, thumb.height / result.grid.height
    x, y = int((col * 50 + 25) * sx), int((row * 50 + 25) * sy)
    assert im.getpixel((x, y)) == thumb.getpixel((x, y))


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_geojson_regions_cover_exactly_the_malignant_tiles(scored, tmp_path, threshold):
    result, _ = scored
    path = result.to_geojson(tmp_path / "r.geojson", threshold)
    data = json.loads(path.read_text())
    assert data["type"] == "FeatureCollection"
    polys = [shape(f["geometry"]) for f in data["features"]]
    assert all(p.is_valid and p.geom_type == "Polygon" for p in polys)
    mal = malignant_tiles(result, threshold)
    tiles = unary_union([box(t.x, t.y, t.x + t.width, t.y + t.height) for t in mal]) if mal else None
    union = unary_union(polys) if polys else None
    if tiles is None:
        assert union is None
        return
    assert union.symmetric_difference(tiles).area == pytest.approx(0.0, abs=1e-6)
    for f in data["features"]:
        p = f["properties"]
        assert p["objectType"] == "annotation" and p["classification"]["name"] == "Tumor"
        m = p["measurements"]
        assert threshold <= m["mean P(malignant)"] <= m["max P(malignant)"] <= 1.0
        assert m["area mm^2"] == pytest.approx(shape(f["geometry"]).area * 16e-6, rel=1e-4)
    assert sum(f["properties"]["measurements"]["tiles"] for f in data["features"]) == len(mal)


def test_no_malignant_tile_gives_an_empty_collection(scored, tmp_path):
    result, _ = scored
    data = json.loads(result.to_geojson(tmp_path / "r.geojson", threshold=1.01).read_text())
    assert data == {"type": "FeatureCollection", "features": []}

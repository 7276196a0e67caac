"""What a scored slide hands on: the tile table (CSV), the heat map (array and PNG over the thumbnail) and the
malignant regions as GeoJSON that QuPath imports (File > Import objects from file).

GeoJSON as QuPath reads and writes it (QuPath docs, "Exporting annotations"): a ``FeatureCollection`` whose
coordinates are pixels of the full-resolution image (level 0), origin at its top-left corner; each feature's
``properties`` carry ``objectType`` ("annotation"), a ``classification`` (name and RGB colour) and
``measurements`` (name -> number). A region is the union of the tissue tiles whose P(malignant) is at least
``threshold`` (edge- or overlap-connected tiles merge into one polygon, ``shapely.unary_union``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

CSV_COLUMNS = (
    "index",
    "col",
    "row",
    "x",
    "y",
    "width",
    "height",
    "tissue",
    "tissue_fraction",
    "prob_malignant",
    "prob_patch",
    "abstain",
    "ood",
    "ood_score",
)
# Heat-map colours from P = 0 to 1: blue, pale yellow, red (ColorBrewer's RdYlBu ends, colour-blind safe).
RAMP = np.array([[44, 123, 182], [255, 255, 191], [215, 25, 28]], dtype=np.float32)
NOT_ANSWERED = (128, 128, 128)  # tiles that abstained for a reason other than "uncertain", or flagged OOD
REGION_CLASS = {"name": "Tumor", "color": [200, 0, 0]}  # QuPath's built-in class for tumour


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def write_csv(tiles, path: str | Path) -> Path:
    """One row a tile (``CSV_COLUMNS``; background tiles with empty prediction columns)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for t in tiles:
            w.writerow([_cell(getattr(t, c)) for c in CSV_COLUMNS])
    tmp.replace(path)
    return path


def _size(result, size) -> tuple[int, int]:
    w, h = result.grid.width, result.grid.height
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    scale = int(size) / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _grid_values(result, value) -> np.ndarray:
    """(rows, cols) array of ``value(tile)`` per stride cell (NaN where None or no tile)."""
    g = result.grid
    out = np.full((g.rows, g.cols), np.nan, dtype=np.float32)
    for t in result.tiles:
        v = value(t)
        if v is not None:
            out[t.row, t.col] = v
    return out


def _sample(result, cells: np.ndarray, size) -> np.ndarray:
    """``cells`` (one value per stride cell) sampled at each pixel of an image of ``size`` over the slide."""
    g = result.grid
    w, h = _size(result, size)
    xs = ((np.arange(w) + 0.5) * g.width / w) // g.stride
    ys = ((np.arange(h) + 0.5) * g.height / h) // g.stride
    xs, ys = np.minimum(xs.astype(int), g.cols - 1), np.minimum(ys.astype(int), g.rows - 1)
    return cells[np.ix_(ys, xs)]


def heatmap_array(result, size) -> np.ndarray:
    """P(malignant) of the tile under each pixel of an image of ``size`` (thumbnail (w, h) or longer side); NaN
    over background. A pixel takes the tile whose stride cell holds it (with overlap, the tile starting there)."""
    return _sample(result, _grid_values(result, lambda t: t.prob_malignant if t.tissue else None), size)


def colorize(p: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 colours of probabilities ``p`` on ``RAMP`` (NaN: black, to be masked)."""
    q = np.nan_to_num(np.clip(p, 0.0, 1.0), nan=0.0) * 2.0
    lo = np.minimum(q.astype(int), 1)
    f = (q - lo)[..., None]
    return (RAMP[lo] * (1 - f) + RAMP[lo + 1] * f).round().astype(np.uint8)


def write_heatmap_png(result, path: str | Path, thumbnail=None, opacity: float = 0.5) -> Path:
    """The heat map as a PNG: over ``thumbnail`` (a PIL image of the slide; its size sets the map's) blended at
    ``opacity``, else alone on white. Tiles that abstained (other than "uncertain") or were flagged OOD are grey."""
    size = thumbnail.size if thumbnail is not None else 1024
    p = heatmap_array(result, size)
    apart = _sample(result, _grid_values(result, lambda t: 1.0 if _not_answered(t) else None), size)
    rgb = colorize(p)
    rgb[~np.isnan(apart)] = NOT_ANSWERED
    base = np.asarray(thumbnail.convert("RGB"), dtype=np.float32) if thumbnail is not None else np.full_like(rgb, 255)
    alpha = np.where(np.isnan(p), 0.0, float(np.clip(opacity, 0.0, 1.0)))[..., None]
    out = (base * (1 - alpha) + rgb.astype(np.float32) * alpha).round().astype(np.uint8)
    path = Path(path)
    Image.fromarray(out).save(path)
    return path


def _not_answered(t) -> bool:
    return bool(t.tissue and ((t.abstain not in (None, "uncertain")) or t.ood))


def malignant_tiles(result, threshold: float = 0.5) -> list:
    """Tissue tiles whose P(malignant) (the map's: with context when scored with it) is at least ``threshold``."""
    return [t for t in result.scored if t.prob_malignant >= threshold]


def regions(result, threshold: float = 0.5):
    """Shapely polygons (level-0 pixels) of the merged malignant tiles, each with its tiles."""
    from shapely import STRtree, box, unary_union
    from shapely.geometry import Polygon

    tiles = malignant_tiles(result, threshold)
    if not tiles:
        return []
    boxes = [box(t.x, t.y, t.x + t.width, t.y + t.height) for t in tiles]
    merged = unary_union(boxes)
    polys = [merged] if isinstance(merged, Polygon) else list(merged.geoms)
    tree = STRtree(boxes)
    out = []
    for poly in sorted(polys, key=lambda p: (p.bounds[1], p.bounds[0])):
        mine = [tiles[i] for i in tree.query(poly, predicate="covers")]
        out.append((poly, mine))
    return out


def geojson(result, threshold: float = 0.5) -> dict:
    """The malignant regions as a QuPath-compatible GeoJSON ``FeatureCollection`` (see the module docs)."""
    from shapely.geometry import mapping

    mpp = result.summary.get("mpp")
    features = []
    for k, (poly, mine) in enumerate(regions(result, threshold), start=1):
        probs = np.array([t.prob_malignant for t in mine], dtype=np.float64)
        measurements = {
            "tiles": len(mine),
            "mean P(malignant)": round(float(probs.mean()), 6),
            "max P(malignant)": round(float(probs.max()), 6),
            "abstained tiles": sum(t.abstain is not None for t in mine),
            "OOD tiles": sum(bool(t.ood) for t in mine),
            "area px^2": float(poly.area),
        }
        if mpp:
            measurements["area mm^2"] = round(float(poly.area) * mpp * mpp / 1e6, 6)
        geom = mapping(poly)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": geom["type"], "coordinates": _plain(geom["coordinates"])},
                "properties": {
                    "objectType": "annotation",
                    "name": f"malignant region {k}",
                    "classification": dict(REGION_CLASS),
                    "measurements": measurements,
                    "threshold": threshold,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _plain(coords):
    """Shapely's nested tuples as lists of numbers (JSON arrays)."""
    if isinstance(coords, (tuple, list)) and coords and isinstance(coords[0], (int, float)):
        return [float(c) for c in coords]
    return [_plain(c) for c in coords]


def write_geojson(result, path: str | Path, threshold: float = 0.5) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(geojson(result, threshold)))
    tmp.replace(path)
    return path

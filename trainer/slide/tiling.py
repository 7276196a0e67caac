"""The tile grid at the model's scale, and reading its tiles a row band at a time.

A tile covers what one training image covered (``ModelScale.patch_um``): ``round(patch_um / slide mpp)`` level-0
pixels a side, laid from the slide's top-left corner every ``stride = tile x (1 - overlap)`` pixels. Tiles at the
right and bottom edges are clipped to the slide (an IDC mosaic's 50x42 edge patch is its 50x42 edge tile); a tile
clipped under ``MIN_SIDE`` pixels at the model's scale is not made (the data layer skips such patches too).
Pixels are read from the coarsest level that is still at least as fine as the model's scale, then resized to
the model's scale (Pillow's box filter, an area average); a slide already at the model's scale is not resized."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from PIL import Image

from trainer.data.images import MIN_SIDE
from trainer.slide.reader import Slide, SlideError
from trainer.slide.scale import ModelScale

MAX_BAND_PX = 8192  # a row band is read in pieces at most this wide (level pixels)


class TileSpec(NamedTuple):
    index: int
    col: int
    row: int
    x: int  # level-0 pixels
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Grid:
    width: int  # the slide's level-0 size
    height: int
    tile: int  # tile side, level-0 pixels
    stride: int
    cols: int
    rows: int
    level: int  # the level tiles are read from
    downsample: float  # that level's downsample
    patch_px: int  # the model's training-image side: tiles are resized to this scale
    overlap: float

    @property
    def total(self) -> int:
        return self.cols * self.rows

    def spec(self, index: int) -> TileSpec | None:
        """Tile ``index`` (row-major), or None when it is clipped under ``MIN_SIDE`` at the model's scale."""
        row, col = divmod(index, self.cols)
        x, y = col * self.stride, row * self.stride
        w, h = min(self.tile, self.width - x), min(self.tile, self.height - y)
        if min(w, h) * self.patch_px / self.tile < MIN_SIDE:
            return None
        return TileSpec(index, col, row, x, y, w, h)

    def specs(self):
        for i in range(self.total):
            s = self.spec(i)
            if s is not None:
                yield s

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def plan_grid(slide: Slide, scale: ModelScale, overlap: float = 0.0) -> Grid:
    """The grid of ``slide`` for a model of ``scale``, tiles overlapping by ``overlap`` (0 <= overlap < 1)."""
    if slide.mpp is None:
        raise SlideError(f"{slide.path}: no scale: give --mpp or --magnification")
    if not 0.0 <= overlap < 1.0:
        raise SlideError(f"overlap {overlap}: give a share of the tile, from 0 (none) up to under 1 (e.g. 0.5)")
    tile = max(1, round(scale.patch_um / slide.mpp))
    if tile < MIN_SIDE:
        raise SlideError(
            f"{slide.path}: at {slide.mpp:.4g} um/px a model input ({scale.patch_um:.4g} um) is {tile} px, under "
            f"{MIN_SIDE} px: the slide is too coarse for this model"
        )
    stride = max(1, round(tile * (1.0 - overlap)))
    w, h = slide.dimensions
    cols = max(0, math.ceil((w - tile) / stride)) + 1 if w >= tile else 1
    rows = max(0, math.ceil((h - tile) / stride)) + 1 if h >= tile else 1
    level = slide.best_level(tile / scale.patch_px)
    return Grid(w, h, tile, stride, cols, rows, level, slide.level_downsamples[level], scale.patch_px, overlap)


def _fit(image: Image.Image, spec: TileSpec, grid: Grid) -> Image.Image:
    """A tile read at ``grid.level`` resized to the model's scale (left as it is when it already is)."""
    size = (
        max(1, round(spec.width * grid.patch_px / grid.tile)),
        max(1, round(spec.height * grid.patch_px / grid.tile)),
    )
    return image if image.size == size else image.resize(size, Image.BOX)


def read_tiles(slide: Slide, grid: Grid, specs: list[TileSpec]) -> list[Image.Image]:
    """The tiles of ``specs`` (RGB, at the model's scale), in order; neighbouring tiles of one row are cut from
    one region read (a row band at most ``MAX_BAND_PX`` wide), which is several times cheaper than a read each."""
    ds = grid.downsample
    out: list[Image.Image | None] = [None] * len(specs)
    k = 0
    while k < len(specs):
        first = specs[k]
        end = k + 1
        while (
            end < len(specs)
            and specs[end].row == first.row
            and specs[end].col == specs[end - 1].col + 1
            and (specs[end].x + specs[end].width - first.x) / ds <= MAX_BAND_PX
        ):
            end += 1
        group = specs[k:end]
        x0, y0 = first.x, first.y
        band_w = math.ceil((group[-1].x + group[-1].width - x0) / ds)
        band_h = math.ceil(max(s.height for s in group) / ds)
        band = slide.read_region((x0, y0), grid.level, (band_w, band_h))
        for j, s in enumerate(group):
            left, top = round((s.x - x0) / ds), 0
            box = (left, top, left + max(1, round(s.width / ds)), top + max(1, round(s.height / ds)))
            out[k + j] = _fit(band.crop(box), s, grid)
        k = end
    return out  # type: ignore[return-value]

"""trainer.slide.tiling: the grid at the model's scale (tile size, stride, edges, level) and tiles read from it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trainer.slide.conftest import write_tiff
from trainer.slide import SlideError, open_slide
from trainer.slide.scale import ModelScale
from trainer.slide.tiling import plan_grid, read_tiles

IDC = ModelScale(4.0, 50, "test")


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(5).integers(0, 256, (430, 520, 3), dtype=np.uint8)


def test_tiles_at_the_slide_scale_are_cut_pixel_for_pixel(tmp_path, image):
    with open_slide(write_tiff(tmp_path / "s.tif", image, mpp=4.0)) as slide:
        grid = plan_grid(slide, IDC)
        assert (grid.tile, grid.stride, grid.cols, grid.rows, grid.level) == (50, 50, 11, 9, 0)
        specs = list(grid.specs())
        tiles = read_tiles(slide, grid, specs)
    for s, t in zip(specs, tiles, strict=True):
        assert np.array_equal(np.asarray(t), image[s.y : s.y + s.height, s.x : s.x + s.width])
    # the right and bottom edges are clipped to the slide: 520 = 10 x 50 + 20, 430 = 8 x 50 + 30
    assert {(s.width, s.height) for s in specs if s.col == 10 and s.row == 8} == {(20, 30)}


def test_a_finer_slide_is_read_from_a_coarser_level_and_resized(tmp_path, image):
    big = np.kron(image, np.ones((4, 4, 1), dtype=np.uint8))  # the same picture at 1 um/px
    with open_slide(write_tiff(tmp_path / "fine.tif", big, mpp=1.0)) as slide:
        grid = plan_grid(slide, IDC)
        assert grid.tile == 200 and grid.downsample == 4.0 and grid.level > 0
        spec = next(s for s in grid.specs() if (s.col, s.row) == (3, 2))
        (tile,) = read_tiles(slide, grid, [spec])
    assert tile.size == (50, 50)
    assert np.abs(np.asarray(tile, dtype=int) - image[100:150, 150:200]).max() <= 1  # box-averaged 2x twice


def test_overlap_sets_the_stride(tmp_path, image):
    with open_slide(write_tiff(tmp_path / "s.tif", image, mpp=4.0)) as slide:
        grid = plan_grid(slide, IDC, overlap=0.5)
        assert (grid.tile, grid.stride) == (50, 25)
        with pytest.raises(SlideError, match="overlap"):
            plan_grid(slide, IDC, overlap=1.0)


def test_edge_strips_under_the_minimum_side_are_not_tiles(tmp_path):
    a = np.zeros((110, 105, 3), np.uint8)  # 105 = 2 x 50 + 5: a 5 px strip on the right, 10 px at the bottom
    with open_slide(write_tiff(tmp_path / "s.tif", a, mpp=4.0)) as slide:
        grid = plan_grid(slide, IDC)
    assert (grid.cols, grid.rows) == (3, 3)
    assert {(s.col, s.row) for s in grid.specs()} == {(0, 0), (1, 0), (0, 1), (1, 1)}


def test_a_slide_too_coarse_for_the_model_is_refused(tmp_path, image):
    with (
        open_slide(write_tiff(tmp_path / "s.tif", image, mpp=40.0)) as slide,
        pytest.raises(SlideError, match="too coarse"),
    ):
        plan_grid(slide, IDC)

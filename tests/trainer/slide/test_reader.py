"""trainer.slide.reader: slides and large images opened region by region, their scale, and every bad input a
clear SlideError."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.trainer.slide.conftest import write_tiff
from trainer.slide import PLAIN_MAX_PIXELS, SlideError, magnification_mpp, open_slide


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path, width=50_000, height=50_000):
    """A valid PNG header claiming ``width`` x ``height`` RGB pixels, with almost no data: a few hundred bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


@pytest.fixture
def field(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (300, 500, 3), dtype=np.uint8)
    return a, write_tiff(tmp_path / "field.tif", a, mpp=0.5)


def test_a_pyramidal_tiff_opens_with_its_scale_levels_and_regions(field):
    a, path = field
    with open_slide(path) as slide:
        assert slide.kind == "generic-tiff"
        assert slide.dimensions == (500, 300)
        assert slide.mpp == pytest.approx(0.5) and slide.mpp_source == "metadata"
        assert slide.level_count >= 1
        region = slide.read_region((100, 50), 0, (40, 30))
        assert region.mode == "RGB" and region.size == (40, 30)
        assert np.array_equal(np.asarray(region), a[50:80, 100:140])  # lossless, pixel for pixel
        thumb = slide.thumbnail(100)
        assert max(thumb.size) == 100 and thumb.mode == "RGB"
        dz = slide.deepzoom(tile_size=254, overlap=1)
        assert dz.level_dimensions[-1] == (500, 300)


def test_outside_the_slide_reads_white(field):
    _, path = field
    with open_slide(path) as slide:
        region = np.asarray(slide.read_region((480, 290), 0, (40, 20)))
    assert (region[15:, 25:] == 255).all()


def test_the_user_scale_wins_over_the_metadata_with_a_note(field):
    _, path = field
    with open_slide(path, mpp=1.0) as slide:
        assert slide.mpp == 1.0 and slide.mpp_source == "user mpp"
        assert any("0.5 um/px" in n for n in slide.notes)
    with open_slide(path, magnification="20X") as slide:
        assert slide.mpp == pytest.approx(0.5) and slide.mpp_source == "user magnification"


def test_magnification_tags():
    assert magnification_mpp("40X") == pytest.approx(0.25)
    assert magnification_mpp("2.5x") == pytest.approx(4.0)
    assert magnification_mpp(10) == pytest.approx(1.0)
    with pytest.raises(SlideError, match="magnification"):
        magnification_mpp("forty")


def test_a_plain_image_opens_through_pillow_with_a_given_scale(tmp_path):
    path = tmp_path / "field.png"
    Image.new("RGB", (700, 460), (230, 180, 200)).save(path)
    with open_slide(path, magnification="100X") as slide:
        assert slide.kind == "plain" and slide.dimensions == (700, 460) and slide.mpp == pytest.approx(0.1)
        assert slide.read_region((0, 0), 0, (10, 10)).getpixel((5, 5)) == (230, 180, 200)


def test_an_image_with_no_scale_is_refused_with_what_to_give(tmp_path):
    path = tmp_path / "field.png"
    Image.new("RGB", (64, 64), (230, 180, 200)).save(path)
    with pytest.raises(SlideError, match="no scale: give --mpp or --magnification"):
        open_slide(path)
    tif = write_tiff(tmp_path / "untagged.tif", np.zeros((300, 300, 3), np.uint8), mpp=None)
    with pytest.raises(SlideError, match="no scale"):
        open_slide(tif)


def test_a_50000_px_square_png_is_refused_from_its_header(tmp_path):
    path = bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 2000
    with pytest.raises(SlideError, match=f"refused.*{PLAIN_MAX_PIXELS // 1_000_000} MP.*pyramidal TIFF"):
        open_slide(path, mpp=0.25)


def test_a_plain_image_just_over_the_cap_is_refused_before_decoding(tmp_path):
    path = bomb_png(tmp_path / "big.png", 8_001, 8_000)  # under Pillow's own limit, over ours
    with pytest.raises(SlideError, match=r"8,001 x 8,000 px .* over the 64 MP"):
        open_slide(path, mpp=0.25)


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.98])
def test_a_truncated_tiff_is_named_truncated(tmp_path, keep):
    rng = np.random.default_rng(2)
    full = write_tiff(tmp_path / "full.tif", rng.integers(0, 256, (1200, 1200, 3), dtype=np.uint8), mpp=0.5)
    data = full.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SlideError, match="truncated"):
        open_slide(cut)


def test_a_format_neither_reader_knows_is_refused(tmp_path):
    path = tmp_path / "scan.czi"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(SlideError, match="unsupported format: neither OpenSlide .* nor Pillow"):
        open_slide(path, mpp=0.25)


def test_missing_empty_and_folder_inputs(tmp_path):
    with pytest.raises(SlideError, match="file not found"):
        open_slide(tmp_path / "nope.svs")
    (tmp_path / "empty.svs").write_bytes(b"")
    with pytest.raises(SlideError, match="empty file"):
        open_slide(tmp_path / "empty.svs")
    with pytest.raises(SlideError, match="not a file"):
        open_slide(tmp_path)
    (tmp_path / "some.png").write_bytes(b"x")
    with pytest.raises(SlideError, match="positive number"):
        open_slide(tmp_path / "some.png", mpp=-1)


def test_a_huge_slide_without_a_pyramid_is_refused(tmp_path, monkeypatch):
    import trainer.slide.reader as reader

    path = write_tiff(tmp_path / "flat.tif", np.zeros((600, 600, 3), np.uint8), mpp=None)
    monkeypatch.setattr(reader, "PLAIN_MAX_PIXELS", 100_000)  # a 600 x 600 single-level slide stands for a huge one
    with pytest.raises(SlideError, match="smallest level is 600 x 600 px.*save it with a pyramid"):
        open_slide(path, mpp=0.25)

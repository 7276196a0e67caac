import numpy as np
import pytest
from PIL import Image

from tests.trainer.data.conftest import BAD_KINDS, ODD_BUT_VALID, write_hostile
from trainer.data.images import ImageError, load_resized, load_rgb, probe


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, tiny_records):
    return write_hostile(
        tmp_path_factory.mktemp("hostile"), __import__("pathlib").Path(tiny_records[0].path), "img-{seq}.{ext}"
    )


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_images_raise_a_clear_error_naming_the_file(hostile, kind):
    path = hostile[kind]
    with pytest.raises(ImageError) as err:
        load_rgb(path)
    assert str(path) in str(err.value)
    expected = {
        "truncated": "corrupt",
        "empty": "empty",
        "text": "not an image",
        "huge": "too large",
        "bomb": "too large",
    }[kind]
    assert expected in err.value.reason


@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "huge", "bomb"])
def test_header_probe_catches_them_without_decoding(hostile, kind):
    with pytest.raises(ImageError, match="img-"):
        probe(hostile[kind])


@pytest.mark.parametrize("kind", ODD_BUT_VALID)
def test_unusual_modes_become_rgb(hostile, kind):
    img = load_rgb(hostile[kind])
    assert img.mode == "RGB" and img.size == (32, 24)
    arr = np.asarray(img)
    if kind == "16bit":  # 12-bit data in a 16-bit file is stretched, not left nearly black
        assert arr.max() > 200
    if kind == "rgba":  # fully transparent pixels become the white slide background
        assert (arr == 255).all()


def test_bytes_and_missing_files(tmp_path, hostile):
    assert load_rgb(hostile["rgba"].read_bytes()).size == (32, 24)
    with pytest.raises(ImageError, match="<upload>.*empty"):
        load_rgb(b"")
    with pytest.raises(ImageError, match="file not found"):
        load_rgb(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="not a file"):
        load_rgb(tmp_path)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)
    out = load_rgb(path)
    assert out.size == (20, 40)
    arr = np.asarray(out).astype(int)
    assert arr[2, 10, 2] > 200 and arr[-3, 10, 0] > 200  # blue now on top, red at the bottom


def test_load_resized_keeps_aspect(hostile):
    assert load_resized(hostile["rgba"], 12).size == (16, 12)


@pytest.mark.parametrize("kind", ["huge", "bomb"])
def test_oversized_images_get_the_one_size_cap_message(hostile, kind):
    from trainer.data.images import MAX_PIXELS, size_cap_message

    with pytest.raises(ImageError) as err:
        load_rgb(hostile[kind])
    reason = err.value.reason
    assert "decompression" not in reason and "DOS" not in reason
    assert reason.startswith("image too large (") and reason.endswith(size_cap_message(None).split(";", 1)[1])
    assert f"{MAX_PIXELS:,}" in reason


def test_docs_state_the_size_cap_as_the_reader_does():
    from pathlib import Path

    from trainer.data.images import size_cap_message

    docs = (Path(__file__).resolve().parents[3] / "docs" / "predict.md").read_text(encoding="utf-8")
    assert size_cap_message().split("; ", 1)[1] in docs

"""Defensive image reading: every failure becomes an ``ImageError`` that names the file."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from struct import error as struct_error  # raised by some corrupt TIFF/PNG headers

import numpy as np
from PIL import Image, ImageOps

# Largest image we agree to decode (pixels). BreakHis patches are 700x460 and BACH images 2048x1536; anything
# bigger is refused from its header, before decoding, as a decompression-bomb guard.
MAX_PIXELS = 40_000_000
# Smallest side a patch may have to be classified: under 16 px (at 40x, a nucleus or two) a strip such as IDC's
# 50x1 and 50x12 slide-edge tiles holds too little tissue, and resizing it to the input size invents the rest.
# The index reports such images as ``too_small`` and skips them.
MIN_SIDE = 16
MAX_BYTES = 200 * 1024 * 1024
_HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageError(ValueError):
    """An image that cannot be used, with the file it came from."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = str(path) if path is not None else "<upload>"
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def to_rgb(img: Image.Image) -> Image.Image:
    """``img`` as RGB, the one way every reader of images (files, the model's input, the trust checks) makes it:
    transparency composited on white, the slide background (Pillow's ``convert`` would drop the alpha and show
    whatever lies under it: the model and the checks would see another image than a viewer does)."""
    if img.mode == "RGB":
        return img
    if img.mode in _HIGH_BIT_MODES:
        # 16-bit / 32-bit grayscale: stretch to the image's own range (12-bit data in a 16-bit file would
        # otherwise come out nearly black).
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / ((hi - lo) or 1.0) * 255.0
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))  # slide background is white
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, ...


def _open_source(source: str | os.PathLike | bytes) -> tuple[Path | None, io.IOBase]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise ImageError(None, "empty upload (0 bytes)")
        return None, io.BytesIO(source)
    path = Path(source)
    if not path.exists():
        raise ImageError(path, "file not found")
    if not path.is_file():
        raise ImageError(path, "not a file")
    size = path.stat().st_size
    if size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    if size > MAX_BYTES:
        raise ImageError(path, f"file too large ({size / 2**20:.0f} MiB > {MAX_BYTES / 2**20:.0f} MiB)")
    return path, open(path, "rb")


def too_small_message(
    size: tuple[int, int], min_side: int = MIN_SIDE, source: float | None = None, evidence: str = ""
) -> str:
    """The one text for an image too small to classify: by its own size or, with ``source`` (the thumbnail's
    shorter side) and ``evidence``, as an enlargement of a thumbnail too small (``trainer.trust.tissue``)."""
    what = f"{size[0]}x{size[1]} px"
    if source is not None:
        what += f" enlarged from a thumbnail of about {source:.0f} px" + (f": {evidence}" if evidence else "")
    return f"image too small to classify ({what}; the smallest side must be at least {min_side} px)"


def size_cap_message(pixels: int | None = None, max_pixels: int = MAX_PIXELS) -> str:
    """The one text for an image over the pixel cap: the app, the trainer and the docs all show this."""
    got = f"{pixels:,} pixels" if pixels else "too many pixels"
    return f"image too large ({got}; the cap is {max_pixels / 1e6:g} Mpx = {max_pixels:,} pixels); crop or resize it"


def _check_size(path, img: Image.Image, max_pixels: int) -> None:
    w, h = img.size
    if w * h > max_pixels:
        raise ImageError(path, size_cap_message(w * h, max_pixels))
    if w == 0 or h == 0:
        raise ImageError(path, f"image has no pixels ({w}x{h})")


def _errors(path, fn):
    """Run ``fn`` and turn every decoder failure into an ``ImageError`` naming ``path``."""
    try:
        return fn()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (far above our cap) fires before the header check: same message, its pixel count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageError(path, size_cap_message(int(found[1]) if found else None)) from None
    except Image.UnidentifiedImageError:
        raise ImageError(path, "not an image file (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, IndexError, struct_error) as exc:
        raise ImageError(path, f"unreadable or corrupt image ({type(exc).__name__}: {exc})") from None


def _draft_within(img: Image.Image, max_pixels: int) -> None:
    """Make a JPEG decode at the largest of 1/1, 1/2, 1/4, 1/8 scale that fits ``max_pixels`` (libjpeg scales
    while decoding: the full-size pixels are never made). Other formats are left as they are."""
    if img.format != "JPEG":
        return
    w, h = img.size
    for k in (1, 2, 4, 8):
        if -(-w // k) * -(-h // k) <= max_pixels:
            if k > 1:
                img.draft(img.mode, (w // k, h // k))
            return


def load_rgb(
    source: str | os.PathLike | bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    name: str | os.PathLike | None = None,
    reduce: bool = False,
) -> Image.Image:
    """Open a file path or raw bytes and return a fully decoded RGB ``PIL.Image``.

    Handles EXIF orientation, grayscale, palette, RGBA, CMYK and 16-bit images; refuses empty, truncated,
    non-image and oversized files with an ``ImageError`` naming the file (``name`` names raw bytes). With
    ``reduce``, a JPEG over ``max_pixels`` is decoded at 1/2, 1/4 or 1/8 scale to fit instead of being refused.
    """

    def run():
        path, fh = _open_source(source)
        label = path if path is not None else name
        with fh:
            # No warnings.catch_warnings() here: it is not thread-safe and the index decodes in threads. The
            # explicit size check below refuses every image Pillow would warn about, before decoding.
            img = Image.open(fh)
            if reduce and img.size[0] * img.size[1] > max_pixels:
                _draft_within(img, max_pixels)
            _check_size(label, img, max_pixels)
            img.load()
            return to_rgb(ImageOps.exif_transpose(img))  # camera/scanner orientation

    return _errors(
        name if name is not None else (None if isinstance(source, (bytes, bytearray, memoryview)) else source), run
    )


def probe(
    source: str | os.PathLike | bytes, *, max_pixels: int = MAX_PIXELS, name: str | os.PathLike | None = None
) -> tuple[int, int]:
    """Cheap check without decoding pixels: header, size limit, and Pillow's ``verify()`` (for PNG this
    checks every chunk's CRC, so truncated or damaged files are caught). Returns ``(width, height)``."""

    def run():
        path, fh = _open_source(source)
        with fh:
            img = Image.open(fh)
            _check_size(path if path is not None else name, img, max_pixels)
            size = img.size
            img.verify()
            return size

    return _errors(
        name if name is not None else (None if isinstance(source, (bytes, bytearray, memoryview)) else source), run
    )


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """Resize so the shorter side is ``size`` (keeps aspect; crops happen in transforms)."""
    w, h = img.size
    if min(w, h) == size:
        return img
    scale = size / min(w, h)
    return img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)


def load_resized(path: str | os.PathLike, size: int) -> Image.Image:
    """Decode and resize so the shorter side is ``size``."""
    return resize_shorter(load_rgb(path), size)

"""Defensive image reading: every failure becomes an ``ImageError`` that names the file."""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Largest image we agree to decode (pixels). BreakHis patches are 700x460; whole-slide tiles are far
# smaller than this. Anything bigger is refused before decoding, as a decompression-bomb guard.
MAX_PIXELS = 40_000_000
MAX_BYTES = 200 * 1024 * 1024


class ImageError(ValueError):
    """An image that cannot be used, with the file it came from."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = str(path) if path is not None else "<upload>"
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _to_rgb(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img)  # camera/scanner orientation
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) or 1.0
        img = Image.fromarray((arr / hi * 255.0).clip(0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))  # slide background is white
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def load_rgb(source: str | os.PathLike | bytes, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open a file path or raw bytes and return a fully decoded RGB ``PIL.Image``.

    Handles EXIF orientation, grayscale, palette, RGBA, CMYK and 16-bit images; refuses empty, truncated,
    non-image and oversized files with an ``ImageError`` naming the file.
    """
    path = None if isinstance(source, (bytes, bytearray)) else Path(source)
    try:
        if path is not None:
            if not path.is_file():
                raise ImageError(path, "file not found")
            size = path.stat().st_size
            if size == 0:
                raise ImageError(path, "empty file (0 bytes)")
            if size > MAX_BYTES:
                raise ImageError(path, f"file too large ({size / 2**20:.0f} MiB > {MAX_BYTES / 2**20:.0f} MiB)")
            fh = open(path, "rb")
        else:
            if not source:
                raise ImageError(None, "empty upload (0 bytes)")
            fh = io.BytesIO(source)
        with fh, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fh)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(path, f"image too large ({w}x{h} = {w * h:,} pixels > {max_pixels:,}); crop or resize it first")
            img.load()
            return _to_rgb(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(path, f"image too large (decompression bomb guard): {exc}") from None
    except Image.DecompressionBombWarning as exc:
        raise ImageError(path, f"image too large (decompression bomb guard): {exc}") from None
    except Image.UnidentifiedImageError:
        raise ImageError(path, "not an image file (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(path, f"unreadable or corrupt image ({exc})") from None


def load_resized(path: str | os.PathLike, size: int) -> Image.Image:
    """Decode and resize so the shorter side is ``size`` (keeps aspect; crops happen in transforms)."""
    img = load_rgb(path)
    w, h = img.size
    scale = size / min(w, h)
    if scale < 1.0 or scale > 1.0:
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    return img

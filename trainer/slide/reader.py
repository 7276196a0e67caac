"""Opening large images and whole slides without loading them whole (issue 26).

Whole-slide formats (Aperio SVS, Hamamatsu NDPI, generic tiled / pyramidal TIFF, MIRAX, Philips TIFF, DICOM, ...)
are read through OpenSlide (``openslide-python`` with the ``openslide-bin`` wheel: nothing is compiled or
downloaded), region by region and level by level. Plain images (PNG, JPEG, a stripped TIFF: a microscope field such
as BreakHis' 700x460 or UCSB's 896x768) are decoded by Pillow into memory, so they are refused from their header
above ``PLAIN_MAX_PIXELS`` (a decompression-bomb guard: a PNG claiming 50,000 x 50,000 px is refused before any
pixel is decoded), then served through ``openslide.ImageSlide`` so both kinds answer the same calls.

The scale (micrometres per level-0 pixel): the caller's ``mpp`` or ``magnification`` when given (it corrects a
wrong tag), else the slide's metadata (OpenSlide's ``openslide.mpp-x``, which it also derives from a TIFF's
resolution tags in centimetres or inches, else its objective power), else ``SlideError(NO_SCALE)``: a model's input
covers a fixed width in micrometres, and without the slide's scale no tile size can match it.

Every failure is a ``SlideError`` (a ``ValueError``: the CLI prints one line) naming the file and what to do."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from PIL import Image

# Plain images are decoded whole: at most this many pixels (8,000 x 8,000; 192 MB as RGB in memory). Pillow's own
# decompression-bomb limit (89.5 MP) is higher; a larger field must come as a tiled, pyramidal TIFF.
PLAIN_MAX_PIXELS = 64_000_000
# Micrometres per pixel at "1X" by the whole-slide convention (40X ~ 0.25 um/px, 20X ~ 0.5 um/px: Aperio,
# Hamamatsu and the OpenSlide test slides): mpp = MPP_AT_1X / magnification.
MPP_AT_1X = 10.0
# What the reader opens, by file name: OpenSlide's formats and the plain images Pillow decodes (the app lists a
# folder's slides by these).
SLIDE_SUFFIXES = (
    ".svs",
    ".tif",
    ".tiff",
    ".ndpi",
    ".vms",
    ".vmu",
    ".scn",
    ".mrxs",
    ".bif",
    ".svslide",
    ".dcm",
    ".png",
    ".jpg",
    ".jpeg",
)
NO_SCALE = "no scale: give --mpp or --magnification (e.g. --magnification 40X)"


class SlideError(ValueError):
    """A slide or image that cannot be used, with one sentence that says why and what to do."""


def magnification_mpp(tag: str | float | int) -> float:
    """Micrometres per pixel of a magnification tag ("40X", "40x", "40", 40): ``MPP_AT_1X / magnification``."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*[xX]?\s*", str(tag))
    if not m or float(m[1]) <= 0:
        raise SlideError(f"magnification {tag!r}: give it as a number with an optional X, e.g. 40X or 2.5X")
    return MPP_AT_1X / float(m[1])


class Slide:
    """An open slide or large image: level-0 size, scale, levels, regions, thumbnail, Deep Zoom tiles.
    ``mpp`` is micrometres per level-0 pixel; ``mpp_source`` says where it came from."""

    def __init__(self, osr, path: Path, kind: str, mpp: float | None, mpp_source: str, notes: list[str]):
        self._osr = osr
        self.path = path
        self.kind = kind  # OpenSlide's vendor ("aperio", "generic-tiff", ...) or "plain" (Pillow)
        self.mpp = mpp
        self.mpp_source = mpp_source  # "metadata", "objective power", "user mpp", "user magnification", "none"
        self.notes = notes

    @property
    def osr(self):
        """The ``openslide.AbstractSlide`` underneath (``OpenSlide`` or ``ImageSlide``)."""
        return self._osr

    @property
    def dimensions(self) -> tuple[int, int]:
        return tuple(self._osr.dimensions)

    @property
    def level_count(self) -> int:
        return int(self._osr.level_count)

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return tuple(tuple(d) for d in self._osr.level_dimensions)

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return tuple(float(d) for d in self._osr.level_downsamples)

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._osr.properties)

    def best_level(self, downsample: float) -> int:
        """The level whose downsample is the largest not above ``downsample`` (level 0 when under 1)."""
        return int(self._osr.get_best_level_for_downsample(max(1.0, downsample)))

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> Image.Image:
        """RGB region: ``location`` in level-0 pixels, ``size`` in ``level`` pixels; what lies outside the slide
        (or is transparent) is white, the slide background."""
        from trainer.data.images import to_rgb

        try:
            region = self._osr.read_region((int(location[0]), int(location[1])), int(level), tuple(map(int, size)))
        except Exception as exc:  # openslide.OpenSlideError: a damaged tile; the handle is unusable after it
            raise SlideError(f"{self.path}: cannot read the region at {location} (level {level}): {exc}") from None
        return to_rgb(region)

    def thumbnail(self, max_side: int = 1024) -> Image.Image:
        """The whole slide at most ``max_side`` px on its longer side, RGB, read from the smallest level at least
        that large (a coarser one when that level is over ``PLAIN_MAX_PIXELS``; ``open_slide`` refuses a slide whose
        smallest level is)."""
        w, h = self.dimensions
        scale = min(1.0, max_side / max(w, h))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        level = self.best_level(1.0 / scale)
        while level + 1 < self.level_count and math.prod(self.level_dimensions[level]) > PLAIN_MAX_PIXELS:
            level += 1  # a sparse pyramid: a coarser level rather than a read of over PLAIN_MAX_PIXELS
        lw, lh = self.level_dimensions[level]
        image = self.read_region((0, 0), level, (lw, lh))
        return image if image.size == size else image.resize(size, Image.BOX)

    def deepzoom(self, tile_size: int = 254, overlap: int = 1):
        """An ``openslide.deepzoom.DeepZoomGenerator`` over this slide (the viewer's tiles)."""
        from openslide.deepzoom import DeepZoomGenerator

        return DeepZoomGenerator(self._osr, tile_size=tile_size, overlap=overlap, limit_bounds=False)

    def close(self) -> None:
        self._osr.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.dimensions
        return f"Slide({self.path.name!r}, {self.kind}, {w}x{h}, mpp={self.mpp}, levels={self.level_count})"


def open_slide(path: str | os.PathLike, mpp: float | None = None, magnification: str | float | None = None) -> Slide:
    """Open ``path`` as a ``Slide``; ``mpp`` (um per level-0 pixel) or ``magnification`` ("40X") set its scale
    when given. ``SlideError`` for a file that is missing, unreadable, truncated, of a format neither OpenSlide nor
    Pillow reads, a plain image over ``PLAIN_MAX_PIXELS``, or one with no scale."""
    path = Path(path)
    if not path.exists():
        raise SlideError(f"{path}: file not found")
    if not path.is_file():
        raise SlideError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise SlideError(f"{path}: empty file (0 bytes)")
    if mpp is not None and not (math.isfinite(float(mpp)) and float(mpp) > 0):
        raise SlideError(f"mpp {mpp!r}: give micrometres per pixel as a positive number, e.g. 0.25")
    user = (float(mpp), "user mpp") if mpp is not None else None
    if user is None and magnification not in (None, ""):
        user = (magnification_mpp(magnification), "user magnification")
    osr, kind, notes = _open(path)
    try:
        found = _metadata_mpp(osr) if kind != "plain" else None
        if user is not None:
            value, source = user
            if found is not None and abs(found[0] - value) > 0.05 * value:
                notes.append(f"the slide's {found[1]} says {found[0]:.4g} um/px; the given {value:.4g} um/px is used")
        elif found is not None:
            value, source = found
        else:
            raise SlideError(f"{path}: {NO_SCALE}")
    except Exception:
        osr.close()
        raise
    return Slide(osr, path, kind, value, source, notes)


def _open(path: Path):
    import openslide

    try:
        vendor = openslide.OpenSlide.detect_format(str(path))
    except Exception:  # an unreadable file: Pillow's turn, which names the problem
        vendor = None
    if vendor is not None:
        try:
            osr = openslide.OpenSlide(str(path))
        except Exception as exc:  # OpenSlideError, OpenSlideUnsupportedFormatError
            _check_tiff(path)
            raise SlideError(
                f"{path}: OpenSlide cannot read this {vendor} file (truncated or damaged?): {exc}"
            ) from None
        _probe(osr, path, vendor)
        w, h = osr.level_dimensions[-1]
        if w * h > PLAIN_MAX_PIXELS:
            osr.close()
            raise SlideError(
                f"{path}: refused: its smallest level is {w:,} x {h:,} px, over the {PLAIN_MAX_PIXELS / 1e6:.0f} MP an "
                "overview (thumbnail, the viewer's far zoom) may read at once: save it with a pyramid (a tiled TIFF "
                "with reduced levels, e.g. libvips' tiffsave --tile --pyramid)"
            )
        return osr, vendor, []
    _check_tiff(path)
    return openslide.ImageSlide(_plain_image(path)), "plain", []


def _check_tiff(path: Path) -> None:
    """For a TIFF (by its first bytes): every image's data lies inside the file (a truncated TIFF's last images
    run past its end, and Pillow may still decode the first), read from the directories alone (tifffile)."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return
    import tifffile

    size = path.stat().st_size
    try:
        with tifffile.TiffFile(path) as tif:
            for k, page in enumerate(tif.pages):
                ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=False) if o]
                if not ends or max(ends) > size:
                    raise SlideError(
                        f"{path}: truncated TIFF: image {k} ({page.shape}) runs past the end of the file "
                        f"({size:,} bytes); copy it again"
                    )
    except SlideError:
        raise
    except Exception as exc:  # tifffile.TiffFileError, struct errors, ...: the directories themselves are cut
        raise SlideError(f"{path}: truncated or damaged TIFF (its directories cannot be read): {exc}") from None


def _probe(osr, path: Path, vendor: str) -> None:
    """Read one pixel at the far corner of every level: a truncated file (its last tiles missing) fails here, at
    opening, not halfway through a slide."""
    try:
        for level, (w, h) in enumerate(osr.level_dimensions):
            ds = osr.level_downsamples[level]
            osr.read_region((int((w - 1) * ds), int((h - 1) * ds)), level, (1, 1))
    except Exception as exc:
        osr.close()
        raise SlideError(f"{path}: this {vendor} file is truncated or damaged (a tile cannot be read): {exc}") from None


def _plain_image(path: Path) -> Image.Image:
    from PIL import UnidentifiedImageError

    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise SlideError(
            f"{path}: unsupported format: neither OpenSlide (SVS, NDPI, MRXS, SCN, BIF, DICOM, tiled TIFF, ...) "
            "nor Pillow (PNG, JPEG, TIFF, ...) can read it"
        ) from None
    except Image.DecompressionBombError as exc:  # over twice Pillow's limit: refused from the header
        raise SlideError(
            f"{path}: refused: a plain image over the {PLAIN_MAX_PIXELS / 1e6:.0f} MP a plain image may have (it is "
            f"decoded whole; Pillow: {exc}); save it as a tiled, pyramidal TIFF"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise SlideError(f"{path}: cannot read this image (truncated or damaged?): {exc}") from None
    w, h = image.size
    if w * h > PLAIN_MAX_PIXELS:
        image.close()
        raise SlideError(
            f"{path}: refused: a plain {image.format or 'image'} of {w:,} x {h:,} px ({w * h / 1e6:,.0f} MP) is over "
            f"the {PLAIN_MAX_PIXELS / 1e6:.0f} MP a plain image may have (it is decoded whole); save it as a tiled, "
            "pyramidal TIFF (e.g. `python -m trainer slide mosaic`, or libvips' tiffsave --tile --pyramid)"
        )
    try:
        image.load()
    except Exception as exc:  # OSError "image file is truncated", zlib errors, ...
        raise SlideError(
            f"{path}: cannot decode this {image.format or 'image'} (truncated or damaged?): {exc}"
        ) from None
    return image


def _metadata_mpp(osr) -> tuple[float, str] | None:
    """(um per level-0 pixel, where from) from OpenSlide's properties, or None."""
    import openslide

    props = osr.properties
    values = []
    for key in (openslide.PROPERTY_NAME_MPP_X, openslide.PROPERTY_NAME_MPP_Y):
        try:
            v = float(props.get(key, "nan"))
        except ValueError:
            continue
        if math.isfinite(v) and v > 0:
            values.append(v)
    if values:
        return sum(values) / len(values), "metadata"
    power = props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
    if power:
        try:
            return magnification_mpp(power), "objective power"
        except SlideError:
            return None
    return None

"""Is this a tissue patch at all? Cheap image checks before any model's answer is believed: size (the data
layer's ``MIN_SIDE``, also for an image enlarged from a thumbnail smaller than that), how much of the image is
tissue, and whether that tissue has H&E colours.

The tissue test is the one whole-slide-image toolkits use to drop background tiles: a pixel is background when
it is grey (HSV saturation under 0.05, Slideflow's "grayspace" filter; HistoQC's and histolab's saturation /
white masks are alike) or near-white (glass); the rest is tissue. H&E stains tissue pink (eosin) to blue-purple
(haematoxylin), so clearly stained pixels (saturation at least ``STAINED``) of other hues (a sky, grass, a yellow
sun, uniform random colours) mean the image is not an H&E patch. Faint pixels are left out of the colour test:
their hue is noise (BreakHis's pale backgrounds are faintly cyan). Measured on 3,000 real IDC patches and the 30
real BreakHis images (``bench/README.md``, defaults in ``TrustConfig``).

Effective resolution: an image enlarged from a thumbnail holds no detail beyond that thumbnail, whatever its pixel
count, so it is too small when the thumbnail's shorter side is under ``MIN_SIDE``. An enlargement is a linear map:
every pixel is a fixed combination of the thumbnail's (the trace resampling detectors look for, Popescu & Farid,
IEEE Trans. Signal Process. 2005). ``enlargement_fit`` asks directly whether the image lies in the range of that
map, for each thumbnail side ``m`` under ``MIN_SIDE`` (at most half the image's) and each common kernel
(``KERNELS``: nearest, bilinear, bicubic, Lanczos, and OpenCV's / PyTorch's bicubic): a least-squares projection
of its luminance onto the map's column space (separable, so two small products; on a copy box-reduced to at most
``FIT_SIDE`` px, the reduction built into the map). The share of its variance left unexplained, beyond the 8-bit
rounding noise, is the fit residual: at most 0.0004 for thumbnails of real IDC patches enlarged by any of them
(PNG), from 0.0018 for real IDC patches with tissue pixels (a glass strip; tissue from 0.01) and 0.14 for BreakHis
(``bench/enlarged.py``; the bound, ``TrustConfig.max_fit_residual``, is 0.001). A round trip (shrink to 15 px,
enlarge back, compare) is no such test: its own blur leaves a 12 px bicubic thumbnail up to 25 % RMS error, more
than the blurriest of 629 real IDC patches (from 10 %). Pixel repetition by other grid conventions shows instead in
``repeat_fraction``: most neighbouring pixels exactly equal (over 93 % for a 16 px thumbnail enlarged to 224 px; at
most 51 % in the 18,774 real IDC patches, 13 % in BreakHis), the thumbnail's side about the image's times the share
of unequal neighbours. ``ImageChecks.enlarged_from`` is the one test of both.

Pixel noise: tissue is made of structures wider than a pixel, so neighbouring pixels' values correlate (real IDC
patches from 0.15, median 0.65; BreakHis above 0.9); in noise they do not, whatever its colours (a random palette
can be mostly pink), palette or transparency (translucent noise composited on white, as for the model, is pale
once averaged: its colours cannot be judged on the work copy). ``neighbour_correlation`` measures it.

Numpy and Pillow only (no torch), on copies at most ``WORK_SIDE`` / ``FIT_SIDE`` px: 0.5 ms for a
50 px patch, 1.7-3.1 ms at 224-700 px, CPU time (``bench/enlarged.py``)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from trainer.data.images import MIN_SIDE, to_rgb, too_small_message

WORK_SIDE = 128  # the checks run on a copy whose longer side is at most this
NEAR_WHITE = 0.86  # a pixel whose darkest channel is above this (0-1) is glass / background
STAINED = 0.20  # saturation from which a pixel's hue counts in the colour test
MIN_STAINED = 0.01  # with fewer stained pixels than this share, the colour is not judged (a pale patch)
REPEAT_SIDE = 256  # exact pixel repeats are counted on a central crop of the original, at most this side
FIT_SIDE = 64  # the enlargement fit runs on a luminance copy whose shorter side is at most this,
FIT_LONG = 256  # and its longer side at most this
# The enlargements tried: Pillow's kernels, and the bicubic of OpenCV and PyTorch (Keys' cubic with a = -0.75,
# borders replicated; Pillow's has a = -0.5). Other nearest-neighbour grids show in the pixel-repeat test.
KERNELS = {
    "nearest-neighbour": Image.NEAREST,
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "lanczos": Image.LANCZOS,
    "bicubic (OpenCV, PyTorch)": None,
}
# Variance (grey levels^2) of the 8-bit rounding in an enlarged image's luminance: each of Pillow's two resize
# passes rounds each channel (1/12 each, weighted by the luminance weights squared), and so does the luminance.
ROUNDING_VAR = (2 * (0.299**2 + 0.587**2 + 0.114**2) + 1) / 12
# H&E hues on the HSV wheel (degrees): from blue-purple (haematoxylin) through magenta and pink to red-orange
# (eosin); green, yellow and sky-blue (about 200-215) are not H&E colours.
HE_HUE_FROM, HE_HUE_TO = 220.0, 30.0


@dataclass(frozen=True)
class ImageChecks:
    """What the cheap checks found in one image (the abstention rule decides what it means)."""

    width: int
    height: int
    tissue_fraction: float  # share of pixels that are tissue (saturated, not near-white)
    he_fraction: float | None  # share of the stained pixels with an H&E hue; None: too few to judge (pale)
    repeat_fraction: float = 0.0  # share of neighbouring pixel pairs that are exactly equal (pixel repetition)
    # The enlargement of a thumbnail under MIN_SIDE that best reproduces the image (``enlargement_fit``): that
    # thumbnail's shorter side, the kernel, and the share of the image's variance it leaves unexplained.
    fit_side: int | None = None
    fit_kernel: str | None = None
    fit_residual: float = 1.0
    # Correlation of neighbouring pixels' values (``neighbour_correlation``): about 0 for noise, whatever its
    # colours or transparency; 1.0 when it cannot be measured (a flat or one-pixel image: other checks name it).
    neighbour_correlation: float = 1.0

    @property
    def too_small(self) -> bool:
        return min(self.width, self.height) < MIN_SIDE

    def too_small_message(self, source: float | None = None, evidence: str = "") -> str:
        return too_small_message((self.width, self.height), source=source, evidence=evidence)

    @property
    def source_side(self) -> float:
        """The shorter side of the image its pixel blocks come from (its own, when pixels are not repeated)."""
        return min(self.width, self.height) * (1.0 - self.repeat_fraction)

    def enlarged_from(self, blocky_fraction: float, max_fit_residual: float) -> tuple[float, str] | None:
        """(the thumbnail's shorter side, what shows it) when the image is an enlargement of a thumbnail under
        ``MIN_SIDE`` px, by pixel repetition or by a kernel fitted to it (``TrustConfig``'s ``blocky_fraction``
        and ``max_fit_residual``); None otherwise. The one test of "enlarged from a thumbnail too small"."""
        if self.fit_side is not None and self.fit_residual <= max_fit_residual:
            return float(self.fit_side), (
                f"a {self.fit_kernel} enlargement of such a thumbnail leaves {self.fit_residual:.2%} of the image's "
                "variance unexplained"
            )
        if self.repeat_fraction >= blocky_fraction and self.source_side < MIN_SIDE:
            return self.source_side, f"{self.repeat_fraction:.0%} of its neighbouring pixels are repeats"
        return None

    def to_dict(self) -> dict:
        return asdict(self)


def _work_copy(image: Image.Image) -> Image.Image:
    image = to_rgb(image)
    if max(image.size) <= WORK_SIDE:
        return image
    scale = WORK_SIDE / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BOX)


def tissue_masks(image: Image.Image, saturation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tissue, stained tissue, H&E-coloured stained tissue) boolean masks over the work copy of ``image``."""
    small = _work_copy(image)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float32) / 255.0
    darkest = np.asarray(small, dtype=np.uint8).min(axis=-1).astype(np.float32) / 255.0
    tissue = (hsv[..., 1] >= saturation) & (darkest < NEAR_WHITE)
    stained = tissue & (hsv[..., 1] >= STAINED)
    hue = hsv[..., 0] * 360.0
    return tissue, stained, stained & ((hue >= HE_HUE_FROM) | (hue <= HE_HUE_TO))


def repeat_fraction(image: Image.Image) -> float:
    """Share of horizontally and vertically neighbouring pixels that are exactly equal (all three channels)."""
    image = to_rgb(image)
    w, h = image.size
    side = REPEAT_SIDE
    if w > side or h > side:
        left, top = max(0, (w - side) // 2), max(0, (h - side) // 2)
        image = image.crop((left, top, left + min(w, side), top + min(h, side)))
    a = np.asarray(image.convert("RGBX")).view(np.uint32)[..., 0]  # one number per pixel: all three channels
    if a.shape[0] < 2 or a.shape[1] < 2:
        return 0.0
    across = (a[:, 1:] == a[:, :-1]).mean()
    down = (a[1:] == a[:-1]).mean()
    return float((across + down) / 2)


def neighbour_correlation(image: Image.Image) -> float:
    """Pearson correlation of horizontally and vertically neighbouring pixels' values (the three channels, on the
    central crop of at most ``REPEAT_SIDE`` px that ``repeat_fraction`` reads): tissue is made of structures wider
    than a pixel (real IDC patches from 0.15, median 0.65; BreakHis and photos above 0.9), pixel noise is not (0
    within sampling error, whatever its colours, palette or transparency). 1.0 when undefined (a flat image)."""
    a = np.asarray(to_rgb(image), dtype=np.float32)
    h, w = a.shape[:2]
    top, left = max(0, (h - REPEAT_SIDE) // 2), max(0, (w - REPEAT_SIDE) // 2)
    a = a[top : top + REPEAT_SIDE, left : left + REPEAT_SIDE]
    if a.shape[0] < 2 or a.shape[1] < 2:
        return 1.0
    x = np.concatenate([a[:, :-1].reshape(-1, 3), a[:-1].reshape(-1, 3)])
    y = np.concatenate([a[:, 1:].reshape(-1, 3), a[1:].reshape(-1, 3)])
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    spread = float(np.sqrt(np.square(x, dtype=np.float64).sum() * np.square(y, dtype=np.float64).sum()))
    return float((x * y).sum(dtype=np.float64) / spread) if spread > 0 else 1.0


def _keys_cubic(side: int, source: int, a: float = -0.75) -> np.ndarray:
    """The ``side`` x ``source`` matrix of OpenCV's and PyTorch's bicubic enlargement (Keys 1981, half-pixel
    centres, border samples repeated)."""
    x = (np.arange(side) + 0.5) * source / side - 0.5
    left = np.floor(x).astype(int)
    out = np.zeros((side, source))
    for k in range(-1, 3):
        d = np.abs(x - left - k)
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        np.add.at(out, (np.arange(side), np.clip(left + k, 0, source - 1)), np.where(d <= 1, near, far))
    return out


@lru_cache(maxsize=4096)
def _enlarging_basis(side: int, work: int, source: int, kernel: str) -> np.ndarray:
    """Orthonormal basis (``work`` x ``source``) of the 1-D signals of ``side`` samples that ``kernel`` enlarges
    from ``source`` samples, box-reduced to ``work`` samples as the image is: the identity's rows, resized by the
    very code that resizes images (Pillow's), or by ``_keys_cubic``."""
    if KERNELS[kernel] is None:
        a = Image.fromarray(_keys_cubic(side, source).T.astype(np.float32), "F")
    else:
        a = Image.fromarray(np.eye(source, dtype=np.float32), "F").resize((side, source), KERNELS[kernel])
    if work != side:
        a = a.resize((work, source), Image.BOX)
    q, _ = np.linalg.qr(np.asarray(a, dtype=np.float64).T)
    return q.astype(np.float32)


@lru_cache(maxsize=256)
def _enlarging_bases(size: tuple[int, int], work: tuple[int, int]):
    """For one image geometry: the thumbnails tried, ``(m, height, width)`` (``m`` the shorter side), and for
    every kernel the bases of all thumbnail heights side by side and of all widths (stacked: kernel, samples,
    bases), with the sums over each height's and each width's bases. None when no thumbnail fits."""
    (w, h), (ww, wh) = size, work
    short, long_ = min(w, h), max(w, h)
    pairs = []
    for m in range(1, min(MIN_SIDE, short // 2 + 1)):
        # the thumbnail's longer side: the image's aspect kept, rounded either way
        longs = sorted({max(1, m * long_ // short), max(1, -(-m * long_ // short))})
        for sh, sw in [(m, n) for n in longs] if h <= w else [(n, m) for n in longs]:
            if 2 * sh <= wh and 2 * sw <= ww:
                pairs.append((m, sh, sw))
    if not pairs:
        return None
    heights = sorted({sh for _, sh, _ in pairs})
    widths = sorted({sw for _, _, sw in pairs})
    qh = np.stack([np.concatenate([_enlarging_basis(h, wh, n, k) for n in heights], axis=1) for k in KERNELS])
    qw = np.stack([np.concatenate([_enlarging_basis(w, ww, n, k) for n in widths], axis=1) for k in KERNELS])
    # 0/1 matrices that sum the squared projection over each height's rows and each width's columns
    sum_h = np.repeat(np.eye(len(heights), dtype=np.float32), heights, axis=1)
    sum_w = np.repeat(np.eye(len(widths), dtype=np.float32), widths, axis=0)
    index = (np.array([heights.index(sh) for _, sh, _ in pairs]), np.array([widths.index(sw) for _, _, sw in pairs]))
    return np.array([m for m, _, _ in pairs]), qh.transpose(0, 2, 1).copy(), qw, sum_h, sum_w, index


def enlargement_fit(image: Image.Image, max_residual: float = 0.001) -> tuple[int | None, str | None, float]:
    """(thumbnail side, kernel, residual): the smallest thumbnail (shorter side ``m`` under ``MIN_SIDE`` and at
    most half the image's) that one of ``KERNELS`` enlarges to within ``max_residual`` of ``image``, or failing
    that the closest one (least squares on the luminance). ``residual`` is the share of the image's variance
    left unexplained beyond the expected 8-bit rounding noise: ~0 for such an enlargement, large for real
    detail. ``(None, None, 1.0)`` when the image is too small to tell (a side under 2 px)."""
    w, h = image.size
    scale = min(1.0, FIT_SIDE / min(w, h), FIT_LONG / max(w, h))
    work = (max(1, round(w * scale)), max(1, round(h * scale)))
    bases = _enlarging_bases((w, h), work)
    if bases is None:
        return None, None, 1.0
    ms, qh_t, qw, sum_h, sum_w, (hi, wi) = bases
    rgb = to_rgb(image)
    lum = rgb.convert("L").convert("F")  # ITU-R 601 luminance, rounded to 8 bits
    if work != (w, h):
        lum = lum.resize(work, Image.BOX)
    x = np.asarray(lum, dtype=np.float32)
    x = x - x.mean()
    total = float(np.square(x, dtype=np.float64).sum())
    # The 8-bit rounding noise: a smooth enlargement's rounding errors are alike over wide areas, so the
    # reduction does not average them away; count them in full.
    noise = ROUNDING_VAR * x.size
    # Each thumbnail's projection is qh_m^T x qw_m: all heights against all widths, per kernel, in two
    # products; the energy of each (height, width) block is what that thumbnail's enlargement explains.
    explained = (sum_h @ np.square(qh_t @ x @ qw) @ sum_w)[:, hi, wi].astype(np.float64)
    residual = np.clip(total - explained - noise, 0.0, None) / total if total > noise else np.zeros(explained.shape)
    close = residual <= max_residual  # (kernel, thumbnail)
    if close.any():  # the smallest thumbnail side that fits; of its thumbnails and kernels, the closest
        smallest = ms[close.any(axis=0)].min()
        residual_of = np.where(close & (ms == smallest)[None, :], residual, np.inf)
    else:
        residual_of = residual
    k, j = np.unravel_index(int(np.argmin(residual_of)), residual.shape)
    return int(ms[j]), list(KERNELS)[int(k)], float(residual[k, j])


# The checks of the last images checked, by their pixels: the app judges each patch once per model (the CNN's and
# the VLM's answers), and hashing the pixels costs 3-12 % of checking them (50-700 px).
_RECENT: OrderedDict[tuple, ImageChecks] = OrderedDict()
_RECENT_SIZE = 64  # more than a batch of the app's (HISTOAPP_PREDICT_BATCH, 16)
_recent_lock = threading.Lock()


def check_image(image: Image.Image, saturation: float = 0.05, max_fit_residual: float = 0.001) -> ImageChecks:
    """Size, tissue share, H&E-colour share, pixel noise and signs of enlargement of ``image`` (any PIL mode;
    made RGB as for the model, ``trainer.data.images.to_rgb``). The bounds are ``TrustConfig``'s ``tissue_saturation``
    and ``max_fit_residual``. An image with the same pixels as one of the last ``_RECENT_SIZE`` checked gets
    that one's checks (``ImageChecks`` is immutable)."""
    image = to_rgb(image)  # transparency composited as for the model (``trainer.predict``)
    key = (image.size, hashlib.blake2b(image.tobytes(), digest_size=16).digest(), saturation, max_fit_residual)
    with _recent_lock:
        if key in _RECENT:
            _RECENT.move_to_end(key)
            return _RECENT[key]
    checks = _check(image, saturation, max_fit_residual)
    with _recent_lock:
        _RECENT[key] = checks
        while len(_RECENT) > _RECENT_SIZE:
            _RECENT.popitem(last=False)
    return checks


def _check(image: Image.Image, saturation: float, max_fit_residual: float) -> ImageChecks:
    width, height = image.size
    tissue, stained, he = tissue_masks(image, saturation)
    n_stained = int(stained.sum())
    judged = tissue.size and n_stained >= MIN_STAINED * tissue.size
    fit_side, fit_kernel, fit_residual = enlargement_fit(image, max_fit_residual)
    return ImageChecks(
        width=int(width),
        height=int(height),
        tissue_fraction=float(tissue.mean()) if tissue.size else 0.0,
        he_fraction=float(he.sum() / n_stained) if judged else None,
        repeat_fraction=repeat_fraction(image),
        fit_side=fit_side,
        fit_kernel=fit_kernel,
        fit_residual=fit_residual,
        neighbour_correlation=neighbour_correlation(image),
    )

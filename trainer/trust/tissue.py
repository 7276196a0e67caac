"""Is this a tissue patch at all? Cheap image checks before any model's answer is believed: size (the data
layer's ``MIN_SIDE``, also for a thumbnail enlarged by repeating its pixels), how much of the image is tissue,
and whether that tissue has H&E colours.

The tissue test is the one whole-slide-image toolkits use to drop background tiles: a pixel is background when
it is grey (HSV saturation under 0.05, Slideflow's "grayspace" filter; HistoQC's and histolab's saturation /
white masks are alike) or near-white (glass); the rest is tissue. H&E stains tissue pink (eosin) to blue-purple
(haematoxylin), so clearly stained pixels (saturation at least ``STAINED``) of other hues (a sky, grass, a yellow
sun, uniform random colours) mean the image is not an H&E patch. Faint pixels are left out of the colour test:
their hue is noise (BreakHis's pale backgrounds are faintly cyan). Measured on 3,000 real IDC patches and the 30
real BreakHis images (``bench/README.md``, defaults in ``TrustConfig``).

An image enlarged by pixel repetition (nearest-neighbour) has most neighbouring pixels exactly equal (over 93 %
for a 16 px thumbnail enlarged to 224 px; at most 39 % in 3,000 real IDC patches, 11 % in BreakHis): its source
side is about its side times the share of unequal neighbours. A smoothly (bicubic) enlarged thumbnail leaves no
such trace, and is as blurry as IDC's own blurriest patches: these checks do not catch it.

Numpy and Pillow only (no torch), on a copy at most ``WORK_SIDE`` px: well under a millisecond per patch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from trainer.data.images import MIN_SIDE, too_small_message

WORK_SIDE = 128  # the checks run on a copy whose longer side is at most this
NEAR_WHITE = 0.86  # a pixel whose darkest channel is above this (0-1) is glass / background
STAINED = 0.20  # saturation from which a pixel's hue counts in the colour test
MIN_STAINED = 0.01  # with fewer stained pixels than this share, the colour is not judged (a pale patch)
REPEAT_SIDE = 256  # exact pixel repeats are counted on a central crop of the original, at most this side
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

    @property
    def too_small(self) -> bool:
        return min(self.width, self.height) < MIN_SIDE

    def too_small_message(self) -> str:
        return too_small_message((self.width, self.height))

    @property
    def source_side(self) -> float:
        """The shorter side of the image its pixel blocks come from (its own, when pixels are not repeated)."""
        return min(self.width, self.height) * (1.0 - self.repeat_fraction)

    def to_dict(self) -> dict:
        return asdict(self)


def _work_copy(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
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
    image = image.convert("RGB")
    w, h = image.size
    side = REPEAT_SIDE
    if w > side or h > side:
        left, top = max(0, (w - side) // 2), max(0, (h - side) // 2)
        image = image.crop((left, top, left + min(w, side), top + min(h, side)))
    a = np.asarray(image, dtype=np.uint8)
    if a.shape[0] < 2 or a.shape[1] < 2:
        return 0.0
    across = (a[:, 1:] == a[:, :-1]).all(axis=-1).mean()
    down = (a[1:] == a[:-1]).all(axis=-1).mean()
    return float((across + down) / 2)


def check_image(image: Image.Image, saturation: float = 0.05) -> ImageChecks:
    """Size, tissue share and H&E-colour share of ``image`` (any PIL mode; converted to RGB)."""
    width, height = image.size
    tissue, stained, he = tissue_masks(image, saturation)
    n_stained = int(stained.sum())
    judged = tissue.size and n_stained >= MIN_STAINED * tissue.size
    return ImageChecks(
        width=int(width),
        height=int(height),
        tissue_fraction=float(tissue.mean()) if tissue.size else 0.0,
        he_fraction=float(he.sum() / n_stained) if judged else None,
        repeat_fraction=repeat_fraction(image),
    )

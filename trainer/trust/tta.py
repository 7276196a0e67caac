"""Test-time augmentation for an uncertainty estimate: the eight flips and 90-degree rotations of a patch
(histology has no up or down, and training augments with the same group), predicted in one batch; the spread
of P(malignant) over them says how stable the answer is. About eight times the cost of one prediction."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

# The dihedral group of the square: identity, three rotations, and each of those mirrored.
_OPS = (
    None,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)
N_VIEWS = len(_OPS)


def views(image: Image.Image) -> list[Image.Image]:
    """The image and its seven other flips / right-angle rotations (the first view is the image itself)."""
    return [image if op is None else image.transpose(op) for op in _OPS]


@dataclass(frozen=True)
class Spread:
    """P(malignant) over the views."""

    mean: float
    std: float
    min: float
    max: float
    views: int = N_VIEWS

    @classmethod
    def of(cls, p_malignant) -> Spread:
        p = np.asarray(p_malignant, dtype=np.float64)
        return cls(float(p.mean()), float(p.std()), float(p.min()), float(p.max()), int(len(p)))

    def to_dict(self) -> dict:
        return asdict(self)

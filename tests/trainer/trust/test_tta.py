"""The eight flips / rotations of a patch and the spread of P(malignant) over them."""

import numpy as np
from PIL import Image

from trainer.trust.tta import N_VIEWS, Spread, views


def test_eight_distinct_views_with_the_image_first():
    arr = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    image = Image.fromarray(arr)
    out = views(image)
    assert len(out) == N_VIEWS == 8 and out[0] is image
    assert len({np.asarray(v).tobytes() for v in out}) == 8


def test_spread():
    s = Spread.of([0.2, 0.4, 0.6, 0.8])
    assert (s.min, s.max, s.views) == (0.2, 0.8, 4) and abs(s.mean - 0.5) < 1e-9 and s.std > 0.2

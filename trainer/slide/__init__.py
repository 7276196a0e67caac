"""Whole fields and whole slides as a probability map, tiled at the model's scale (issue 26; docs/slide.md).

``open_slide`` (reader.py) opens a slide or large image; ``score_slide`` (score.py) tiles it at the model's scale
(scale.py, tiling.py) and predicts every tissue tile; ``SlideResult`` (result.py) holds the tiles and the summary and
writes the exports (exports.py). ``mosaic.py`` rebuilds an IDC patient's slide from its patches as a pyramidal TIFF."""

from trainer.slide.reader import PLAIN_MAX_PIXELS, Slide, SlideError, magnification_mpp, open_slide
from trainer.slide.result import SlideResult, Tile
from trainer.slide.scale import ModelScale, model_mpp, model_scale
from trainer.slide.score import score_slide

__all__ = [
    "PLAIN_MAX_PIXELS",
    "ModelScale",
    "Slide",
    "SlideError",
    "SlideResult",
    "Tile",
    "magnification_mpp",
    "model_mpp",
    "model_scale",
    "open_slide",
    "score_slide",
]

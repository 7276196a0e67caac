"""A scored slide: one ``Tile`` per grid tile (background tiles kept, with no prediction) and the slide's summary.
The exports (CSV, heat-map PNG, GeoJSON) live in ``trainer.slide.exports``; the methods here call them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from trainer.slide.tiling import Grid


@dataclass
class Tile:
    """One tile: where it lies (level-0 pixels), whether it is tissue, and, for tissue, the model's answer."""

    x: int
    y: int
    width: int
    height: int
    tissue: bool
    tissue_fraction: float
    prob_malignant: float | None = None  # what the map shows: the tile's own, or its 3x3 mean with ``context``
    prob_patch: float | None = None  # the tile's own calibrated P(malignant)
    abstain: str | None = None  # a code of trainer.trust.abstain.CODES, or None
    ood: bool = False
    ood_score: float | None = None
    col: int = 0
    row: int = 0
    index: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> Tile:
        """A tile from a row of ``tiles.csv`` (``trainer.slide.exports.write_csv``; the resume file alike)."""

        def num(key):
            v = row.get(key)
            return None if v in (None, "") else float(v)

        return cls(
            x=int(row["x"]),
            y=int(row["y"]),
            width=int(row["width"]),
            height=int(row["height"]),
            tissue=row["tissue"] == "1",
            tissue_fraction=float(row["tissue_fraction"]),
            prob_malignant=num("prob_malignant"),
            prob_patch=num("prob_patch"),
            abstain=row.get("abstain") or None,
            ood=row.get("ood") == "1",
            ood_score=num("ood_score"),
            col=int(row["col"]),
            row=int(row["row"]),
            index=int(row["index"]),
        )


@dataclass
class SlideResult:
    tiles: list[Tile]
    summary: dict
    grid: Grid
    complete: bool = True  # False when stopped early (``stop``): a re-run with the same ``out_dir`` continues
    notes: list[str] = field(default_factory=list)

    @property
    def scored(self) -> list[Tile]:
        """The tissue tiles with a prediction."""
        return [t for t in self.tiles if t.tissue and t.prob_malignant is not None]

    def top_k(self, k: int = 12) -> list[Tile]:
        """The ``k`` most suspicious tissue tiles (highest P(malignant) first)."""
        return sorted(self.scored, key=lambda t: (-t.prob_malignant, t.index))[: max(0, k)]

    def uncertain(self, k: int = 12) -> list[Tile]:
        """The ``k`` tissue tiles nearest P(malignant) = 0.5 (the annotation queue's most useful)."""
        return sorted(self.scored, key=lambda t: (abs(t.prob_malignant - 0.5), t.index))[: max(0, k)]

    def heatmap(self, size: int | tuple[int, int] = 1024) -> np.ndarray:
        """(H, W) float array of P(malignant) over the slide, NaN where no tissue tile lies; ``size`` is the
        thumbnail's (w, h) or its longer side."""
        from trainer.slide.exports import heatmap_array

        return heatmap_array(self, size)

    def heatmap_png(self, path: str | Path, thumbnail=None, opacity: float = 0.5) -> Path:
        from trainer.slide.exports import write_heatmap_png

        return write_heatmap_png(self, path, thumbnail, opacity)

    def to_csv(self, path: str | Path) -> Path:
        from trainer.slide.exports import write_csv

        return write_csv(self.tiles, path)

    def to_geojson(self, path: str | Path, threshold: float = 0.5) -> Path:
        from trainer.slide.exports import write_geojson

        return write_geojson(self, path, threshold)

"""Data layer: dataset indexing (BreakHis, BACH, folders, CSV), patient-level folds, image loading,
transforms, caching and the synthetic BreakHis-like generator. The app and the trainer both use it."""

from trainer.data.records import LABELS, MAGNIFICATIONS, SUBTYPE_NAMES, SUBTYPES, Record

__all__ = ["LABELS", "MAGNIFICATIONS", "SUBTYPES", "SUBTYPE_NAMES", "Record"]

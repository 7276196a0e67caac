"""What a model was trained on, and where an image lies outside it (issue 23: a BreakHis ductal carcinoma at 100X
got "benign" from both IDC-trained demo models, with no word that it was another magnification and another scale).

Read from the checkpoint's ``engine.json`` (``trainer.cv`` writes the dataset, magnification, model input and the
training images' typical size there); torch-free, so the app's process reads it without loading the model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from trainer.rundir import ENGINE_META

DATASETS = {"idc": "IDC patches", "breakhis": "BreakHis images", "bach": "BACH images"}
# An image whose shorter side is this many times the training images' (or its inverse) shows its structures at
# another scale than the model learned them: both are shrunk to the same model input.
SCALE_TOLERANCE = 1.25


@dataclass(frozen=True)
class Domain:
    dataset: str | None = None  # trainer.data.records.Record.dataset ("idc", "breakhis", ...), "+"-joined
    magnification: str | None = None  # "40X" ... or "all" (pooled)
    image_size: tuple[int, int] | None = None  # the training images' typical (median) width x height
    input_size: int | None = None  # the model's input side: images are resized (shorter side) and centre-cropped
    zero_shot: bool = False  # a hub base model, not trained here

    def describe(self) -> str:
        if self.zero_shot:
            return "Trained on: nothing here (a base model asked zero-shot, not trained on histopathology)"
        if not (self.dataset or self.magnification or self.image_size):
            return "Trained on: not recorded in this checkpoint"
        what = " + ".join(DATASETS.get(d, f"{d} images") for d in (self.dataset or "").split("+") if d) or "images"
        if self.image_size:
            what += f" of {self.image_size[0]}x{self.image_size[1]} px"
        if self.magnification and self.magnification != "all":
            what += f" at {self.magnification}"
        elif self.magnification == "all":
            what += " at every magnification"
        return f"Trained on: {what}" + (f" (model input {self.input_size} px)" if self.input_size else "")

    def warnings(self, size: tuple[int, int] | None, magnification: str | None) -> list[str]:
        """Why this image (``size`` w x h, ``magnification`` tag or None) lies outside the training images."""
        out = []
        if magnification and self.magnification not in (None, "all") and magnification != self.magnification:
            out.append(
                f"this image is tagged {magnification}; the model was trained at {self.magnification} only, so its "
                "answer here is outside what it learned"
            )
        if size and self.image_size:
            ratio = min(size) / min(self.image_size)
            if ratio > SCALE_TOLERANCE or ratio < 1 / SCALE_TOLERANCE:
                scale = f"{ratio:.1f}x smaller" if ratio > 1 else f"{1 / ratio:.1f}x larger"
                out.append(
                    f"this image is {size[0]}x{size[1]} px, the training images {self.image_size[0]}x"
                    f"{self.image_size[1]} px: shrunk to the same input, its structures look {scale} than in training"
                )
        return out


def crop_note(size: tuple[int, int]) -> str:
    """What a non-square image's explanation covers: the model sees the central square only (its transform)."""
    w, h = size
    if w == h:
        return ""
    side = min(w, h)
    return f"Only the central {side}x{side} px square of this {w}x{h} px image was seen (the blue strips were not)."


def domain_of(entry) -> Domain:
    """The ``Domain`` of a registry entry (``histoapp.models.registry.ModelEntry``)."""
    if entry.source == "hub":
        return Domain(zero_shot=True)
    if entry.path is None:
        return Domain()
    meta_file = Path(entry.path) / ENGINE_META
    return _read(str(meta_file), meta_file.stat().st_mtime if meta_file.is_file() else 0.0)


@lru_cache(maxsize=256)
def _read(path: str, mtime: float) -> Domain:
    try:
        meta = json.loads(Path(path).read_text()) if mtime else {}
    except (OSError, ValueError):
        meta = {}
    size = meta.get("image_size")
    return Domain(
        dataset=meta.get("dataset"),
        magnification=meta.get("magnification"),
        image_size=(int(size[0]), int(size[1])) if isinstance(size, (list, tuple)) and len(size) == 2 else None,
        input_size=meta.get("input_size"),
    )

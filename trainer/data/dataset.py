"""A torch ``Dataset`` over records, with a decoded-and-resized in-memory cache so later epochs do not
re-decode PNGs."""
from __future__ import annotations

from typing import Callable, Sequence

from PIL import Image
from torch.utils.data import Dataset

from trainer.data.images import load_resized, load_rgb
from trainer.data.records import Record


class PatchDataset(Dataset):
    """Yields ``(tensor, target, index)``. ``target`` is the binary label, or the subtype index with
    ``target="subtype"``. ``cache_size``: decode each file once at that shorter side and keep it in memory."""

    def __init__(self, records: Sequence[Record], transform: Callable, *, target: str = "label", cache_size: int | None = None):
        if target not in ("label", "subtype"):
            raise ValueError(f"target must be 'label' or 'subtype', not {target!r}")
        self.records = list(records)
        self.transform = transform
        self.target = target
        self.cache_size = cache_size
        self._cache: dict[int, Image.Image] = {}

    def __len__(self) -> int:
        return len(self.records)

    def image(self, i: int) -> Image.Image:
        if self.cache_size is None:
            return load_rgb(self.records[i].path)
        img = self._cache.get(i)
        if img is None:
            img = self._cache[i] = load_resized(self.records[i].path, self.cache_size)
        return img

    def __getitem__(self, i: int):
        r = self.records[i]
        y = r.label if self.target == "label" else r.subtype_index
        return self.transform(self.image(i)), y, i


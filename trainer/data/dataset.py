"""A torch ``Dataset`` over records, with a decoded-and-resized cache (in memory and/or on disk) so later
epochs do not re-decode PNGs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from trainer.data.images import load_rgb, resize_shorter
from trainer.data.records import Record

_CACHE_VERSION = 1  # bump when what is cached changes


class PatchDataset(Dataset):
    """Yields ``(tensor, target, index)``. ``target`` is the binary label, or the subtype index with
    ``target="subtype"``.

    ``cache_size``: decode each file once at that shorter side and keep it in memory (as uint8 arrays, which
    forked DataLoader workers share copy-on-write; ``make_loader`` fills the cache before forking).
    ``cache_dir``: also keep the resized pixels on disk as ``.npy`` keyed by path + size + mtime + file size
    (+ stain), so later runs and spawned workers skip decoding too; stale entries are never read.
    ``stain``: ``"macenko"``/``"reinhard"`` applied once per image before caching (see ``build_transforms``).
    ``memory_cache=False`` keeps only the disk cache (many workers, big datasets)."""

    def __init__(
        self,
        records: Sequence[Record],
        transform: Callable,
        *,
        target: str = "label",
        cache_size: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        stain: str | None = None,
        stain_reference: str | os.PathLike | None = None,
        memory_cache: bool = True,
    ):
        if target not in ("label", "subtype"):
            raise ValueError(f"target must be 'label' or 'subtype', not {target!r}")
        self.records = list(records)
        if target == "subtype":
            bad = [r.path for r in self.records if r.subtype_index < 0]
            if bad:
                raise ValueError(
                    f"target='subtype' needs a BreakHis subtype on every record; {len(bad)} have none, e.g. {bad[0]}"
                )
        if cache_dir is not None and cache_size is None:
            raise ValueError("cache_dir needs cache_size (the shorter side the cached images are resized to)")
        self.transform = transform
        self.target = target
        self.cache_size = cache_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.memory_cache = memory_cache and cache_size is not None
        self.stain = None
        if stain:
            from trainer.data.stain import StainNormalize

            self.stain = StainNormalize(stain, stain_reference)
        self._cache: dict[int, np.ndarray] = {}
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self.records)

    # --- caching -------------------------------------------------------------------------------------
    def cache_path(self, i: int) -> Path | None:
        """Disk-cache file of record ``i`` (None without a disk cache or when the image is missing)."""
        if self.cache_dir is None:
            return None
        path = self.records[i].path
        try:
            st = os.stat(path)
        except OSError:
            return None
        stain = f"{self.stain.method}:{self.stain.reference}" if self.stain else ""
        key = f"{_CACHE_VERSION}|{os.path.abspath(path)}|{self.cache_size}|{st.st_mtime_ns}|{st.st_size}|{stain}"
        return self.cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"

    def _decode(self, i: int) -> np.ndarray:
        img = load_rgb(self.records[i].path)
        if self.cache_size is not None:
            img = resize_shorter(img, self.cache_size)
        if self.stain is not None:
            img = self.stain(img)
        return np.asarray(img, dtype=np.uint8)

    def _pixels(self, i: int) -> np.ndarray:
        arr = self._cache.get(i)
        if arr is not None:
            return arr
        disk = self.cache_path(i)
        if disk is not None and disk.is_file():
            try:
                arr = np.load(disk, allow_pickle=False)
                if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
                    arr = None
            except (OSError, ValueError, EOFError):
                arr = None  # a damaged cache entry: decode again and overwrite it
        if arr is None:
            arr = self._decode(i)
            if disk is not None:
                _atomic_save(disk, arr)
        if self.memory_cache:
            self._cache[i] = arr
        return arr

    def image(self, i: int) -> Image.Image:
        if self.cache_size is None and self.stain is None:
            return load_rgb(self.records[i].path)
        return Image.fromarray(self._pixels(i), "RGB")

    def warm(self, workers: int = 2, progress: bool = False) -> int:
        """Fill the caches now (threads; decoding releases the GIL). Returns how many images were decoded or
        loaded. Used by ``make_loader`` before DataLoader workers fork, so they share one memory cache."""
        if self.cache_size is None:
            return 0
        todo = [i for i in range(len(self)) if i not in self._cache]
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for _ in tqdm(
                pool.map(self._pixels, todo),
                total=len(todo),
                desc="caching images",
                unit="img",
                disable=not progress,
                leave=False,
            ):
                pass
        return len(todo)

    @property
    def cached(self) -> int:
        return len(self._cache)

    @property
    def targets(self) -> list[int]:
        """Every record's target (what ``__getitem__`` yields as ``y``), without reading an image."""
        return [r.label if self.target == "label" else r.subtype_index for r in self.records]

    def __getitem__(self, i: int):
        r = self.records[i]
        y = r.label if self.target == "label" else r.subtype_index
        return self.transform(self.image(i)), y, i


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    """Write via a temporary file and rename, so concurrent workers never read half a file."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):  # a full or read-only cache folder only costs speed
            os.unlink(tmp)

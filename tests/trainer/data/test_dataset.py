import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.data import dataset as dataset_mod
from trainer.data.dataset import PatchDataset
from trainer.data.loading import make_loader
from trainer.data.records import Record
from trainer.data.transforms import build_transforms


@pytest.fixture
def counting(monkeypatch):
    """Count real decodes."""
    calls = []
    real = dataset_mod.load_rgb

    def spy(path, *a, **k):
        calls.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(dataset_mod, "load_rgb", spy)
    return calls


def test_items_and_targets(tiny_records):
    ds = PatchDataset(tiny_records, build_transforms(24), target="subtype")
    x, y, i = ds[5]
    assert tuple(x.shape) == (3, 24, 24) and y == tiny_records[5].subtype_index and i == 5
    with pytest.raises(ValueError, match="subtype"):
        PatchDataset([Record("a.png", "p", 0)], build_transforms(24), target="subtype")


def test_memory_cache_decodes_once(tiny_records, counting):
    ds = PatchDataset(tiny_records[:4], build_transforms(24), cache_size=28)
    for _ in range(3):
        for i in range(len(ds)):
            ds[i]
    assert len(counting) == 4 and ds.cached == 4
    assert min(ds.image(0).size) == 28


def test_disk_cache_is_reused_and_keyed_by_mtime(tmp_path, tiny_records, counting):
    src = tmp_path / Path(tiny_records[0].path).name
    shutil.copy(tiny_records[0].path, src)
    rec = Record(str(src), "p", 0)
    make = lambda: PatchDataset([rec], build_transforms(24), cache_size=28, cache_dir=tmp_path / "cache")  # noqa: E731
    a = make()[0][0]
    b = make()[0][0]  # a new dataset (a new run): read from disk, not decoded
    assert len(counting) == 1 and torch.equal(a, b)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    os.utime(src, ns=(1, 1_000_000_000))  # the file changed: its old entry is not used
    make()[0]
    assert len(counting) == 2
    for f in (tmp_path / "cache").glob("*.npy"):
        f.write_bytes(b"garbage")  # a damaged entry is decoded again, not trusted
    ds = make()
    ds[0]
    assert len(counting) == 3 and ds._pixels(0).shape[2] == 3


def test_dataset_stain_is_applied_before_caching(tmp_path, tiny_records):
    plain = PatchDataset(tiny_records[:2], build_transforms(24), cache_size=28, cache_dir=tmp_path)
    stained = PatchDataset(tiny_records[:2], build_transforms(24), cache_size=28, cache_dir=tmp_path, stain="reinhard")
    assert plain.cache_path(0) != stained.cache_path(0)
    assert not np.array_equal(np.asarray(plain.image(0)), np.asarray(stained.image(0)))


def test_loader_is_seeded_and_warms_the_cache_for_workers(tiny_records):
    ds = PatchDataset(tiny_records[:8], build_transforms(24, train=True), cache_size=28)
    loader = make_loader(ds, batch_size=4, shuffle=True, num_workers=1, seed=3)
    assert ds.cached == 8  # filled once here, shared by the forked worker
    first = [(x.clone(), idx.tolist()) for x, _, idx in loader]
    again = [(x.clone(), idx.tolist()) for x, _, idx in make_loader(ds, 4, True, 1, seed=3)]
    assert [i for _, i in first] == [i for _, i in again]
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, again, strict=True))
    other = [idx.tolist() for _, _, idx in make_loader(ds, 4, True, 0, seed=4)]
    assert other != [i for _, i in first]

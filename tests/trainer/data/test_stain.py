import pickle
import warnings

import numpy as np
import pytest
from PIL import Image

from trainer.data.images import load_rgb
from trainer.data.stain import StainNormalizationWarning, StainNormalize, beer_lambert, reference_concentrations
from trainer.data.transforms import build_transforms


def _unit(m):
    return m / np.linalg.norm(m, axis=0)


@pytest.mark.parametrize("method", ["macenko", "reinhard"])
def test_stain_normalisation_restores_the_reference_stain(method, tmp_path):
    # The same tissue (concentrations) stained two ways: with the reference H&E vectors, and with a bluer
    # haematoxylin and a more orange eosin. Normalising the second (reference: the first) must bring it closer.
    conc = reference_concentrations(np.random.default_rng(7), 96)
    target = beer_lambert(conc).astype(float)
    other = beer_lambert(conc, _unit(np.array([[0.45, 0.30], [0.60, 0.75], [0.66, 0.59]]))).astype(float)
    Image.fromarray(target.astype(np.uint8)).save(tmp_path / "ref.png")
    out = np.asarray(StainNormalize(method, tmp_path / "ref.png")(Image.fromarray(other.astype(np.uint8)))).astype(
        float
    )
    assert out.shape == other.shape
    before, after = np.abs(other - target).mean(), np.abs(out - target).mean()
    # Macenko unmixes the stains; Reinhard only matches global colour statistics, so it gets less close.
    assert after < (0.5 if method == "macenko" else 0.8) * before, (before, after)


@pytest.mark.parametrize("method", ["macenko", "reinhard"])
def test_blank_patch_falls_back_with_one_warning(method):
    norm = StainNormalize(method)
    blank = Image.new("RGB", (32, 32), (250, 250, 250))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert norm(blank) is blank
        assert norm(blank) is blank
    assert [w.category for w in caught] == [StainNormalizationWarning]
    assert norm.failures == 2


def test_stain_transform_is_picklable_and_first(tiny_records):
    t = build_transforms(32, train=True, stain="macenko")
    assert type(t.transforms[0]).__name__ == "StainNormalize"
    t2 = pickle.loads(pickle.dumps(t))  # DataLoader workers with spawn
    x = t2(load_rgb(tiny_records[0].path))
    assert tuple(x.shape) == (3, 32, 32)


def test_unknown_method_and_missing_reference_are_clear(tmp_path):
    with pytest.raises(ValueError, match="macenko, reinhard"):
        build_transforms(32, stain="vahadane")
    with pytest.raises(FileNotFoundError, match="reference"):
        StainNormalize("macenko", tmp_path / "none.png")


def test_hed_jitter_varies_the_stains_within_bounds_and_is_seeded():
    import torch

    from trainer.data.stain import DEFAULT_REFERENCE, HEDJitter
    from trainer.data.transforms import build_transforms

    img = Image.open(DEFAULT_REFERENCE).convert("RGB").resize((64, 64))
    arr = np.asarray(img, dtype=np.int16)
    assert np.abs(np.asarray(HEDJitter(0.0)(img), dtype=np.int16) - arr).max() <= 1  # round trip is lossless
    torch.manual_seed(0)
    a = np.asarray(HEDJitter(0.05)(img), dtype=np.int16)
    torch.manual_seed(0)
    b = np.asarray(HEDJitter(0.05)(img), dtype=np.int16)
    assert (a == b).all()  # reproducible from torch's seed, like torchvision's transforms
    diff = np.abs(a - arr).mean()
    assert 0.5 < diff < 30  # a visible but light change: the same tissue, other staining
    strong = np.abs(np.asarray(HEDJitter(0.3)(img), dtype=np.int16) - arr).mean()
    assert strong > diff
    names = [type(t).__name__ for t in build_transforms(64, train=True, hed_jitter=0.05).transforms]
    assert "HEDJitter" in names and "HEDJitter" not in [
        type(t).__name__ for t in build_transforms(64, train=False, hed_jitter=0.05).transforms
    ]

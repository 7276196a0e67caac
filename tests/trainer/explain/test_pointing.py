"""Energy-based pointing (trainer.explain.pointing) and the IDC mosaics whose patch labels give the tumour mask."""

import numpy as np
import pytest
from PIL import Image

from trainer.explain.pointing import energy_pointing, idc_mosaics


def idc_folder(root, patients=("101", "102"), grid=4, size=50, seed=0):
    """An IDC layout: each patient a ``grid`` x ``grid`` tiling (step 50 px) whose left column is malignant."""
    rng = np.random.default_rng(seed)
    for pid in patients:
        for i in range(grid):
            for j in range(grid):
                label = int(i == 0)
                folder = root / pid / str(label)
                folder.mkdir(parents=True, exist_ok=True)
                tone = 90 if label else 200
                arr = np.clip(rng.normal(tone, 20, (size, size, 3)), 0, 255).astype(np.uint8)
                x, y = 1 + 50 * i, 1 + 50 * j
                Image.fromarray(arr).save(folder / f"{pid}_idx5_x{x}_y{y}_class{label}.png")
    return root


def test_the_share_of_the_maps_mass_inside_the_mask():
    mask = np.zeros((4, 4), dtype=bool)
    mask[:, :1] = True
    inside = mask.astype(float)
    assert energy_pointing(inside, mask) == 1.0 and energy_pointing(1 - inside, mask) == 0.0
    assert energy_pointing(np.ones((4, 4)), mask) == pytest.approx(0.25)
    assert np.isnan(energy_pointing(np.zeros((4, 4)), mask))
    with pytest.raises(ValueError, match="differ in shape"):
        energy_pointing(np.ones((3, 3)), mask)


def test_mosaics_of_neighbouring_patches_hold_both_classes_and_their_mask(tmp_path):
    from trainer.data.sources import index_dataset

    records = index_dataset(idc_folder(tmp_path / "idc")).records
    mosaics = idc_mosaics(records, side=3)
    # Per patient, the 3 x 3 windows with both classes are those touching the left column; non-overlapping: one.
    assert sorted(m.patient for m in mosaics) == ["101", "102"]
    for m in mosaics:
        assert m.image.size == (150, 150) and m.mask.shape == (150, 150)
        assert (m.x, m.y) == (1, 1) and m.mask[:, :50].all() and not m.mask[:, 50:].any()
        assert m.chance == pytest.approx(1 / 3)
        arr = np.asarray(m.image, dtype=float).mean(axis=2)
        assert arr[:, :50].mean() < 140 < arr[:, 50:].mean()  # the malignant (dark) patches where the mask is
    assert len(idc_mosaics(records, side=3, limit=1)) == 1

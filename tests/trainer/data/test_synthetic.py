import numpy as np
from PIL import Image

from trainer.data.records import MAGNIFICATIONS, SUBTYPES


def test_generated_dataset_has_every_subtype_and_magnification(synthetic_records):
    assert {r.subtype for r in synthetic_records} == set(SUBTYPES)
    assert {r.magnification for r in synthetic_records} == set(MAGNIFICATIONS)
    per_patient = {}
    for r in synthetic_records:
        per_patient.setdefault(r.patient_id, set()).add(r.magnification)
    assert all(m == set(MAGNIFICATIONS) for m in per_patient.values())


def test_classes_differ_in_nuclear_content(synthetic_records):
    # Malignant patches carry more dark (haematoxylin) pixels: a learnable signal.
    def dark_fraction(r):
        a = np.asarray(Image.open(r.path).convert("L"), dtype=np.float32)
        return float((a < 110).mean())

    benign = np.mean([dark_fraction(r) for r in synthetic_records if r.label == 0])
    malignant = np.mean([dark_fraction(r) for r in synthetic_records if r.label == 1])
    assert malignant > 1.5 * benign

from collections import Counter

import pytest

from trainer.data.splits import Splits, make_splits


def test_folds_are_patient_disjoint_across_magnifications(synthetic_records):
    splits = make_splits(synthetic_records, n_folds=4, seed=3)
    tests = [set(f.test_patients) for f in splits.folds]
    all_patients = {r.patient_id for r in synthetic_records}
    assert set().union(*tests) == all_patients
    assert sum(len(t) for t in tests) == len(all_patients)  # each patient tested exactly once
    for f in splits.folds:
        train, val, test = map(set, (f.train_patients, f.val_patients, f.test_patients))
        assert not (train & val or train & test or val & test)
        assert train | val | test == all_patients
        tr, va, te = f.partition(synthetic_records)
        # every magnification of a test patient is in the test part
        for r in synthetic_records:
            if r.patient_id in test:
                assert r in te


def test_folds_are_stratified(synthetic_records):
    splits = make_splits(synthetic_records, n_folds=4, seed=0)
    for f in splits.folds:
        labels = Counter(splits.patient_labels[p] for p in f.test_patients)
        assert labels[0] >= 1 and labels[1] >= 1
        assert abs(labels[0] - labels[1]) <= 1


def test_splits_reproducible_from_seed_and_json(synthetic_records, tmp_path):
    a = make_splits(synthetic_records, n_folds=4, seed=7)
    b = make_splits(synthetic_records, n_folds=4, seed=7)
    c = make_splits(synthetic_records, n_folds=4, seed=8)
    assert a == b
    assert a != c
    path = a.save(tmp_path / "splits.json")
    assert Splits.load(path) == a


def test_too_few_patients_is_a_clear_error(synthetic_records):
    with pytest.raises(ValueError, match="patients"):
        make_splits(synthetic_records, n_folds=20)

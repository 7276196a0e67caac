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


def _records(n_benign, n_malignant):
    from trainer.data.records import Record

    return [
        Record(f"{p}-{m}.png", p, int(p.startswith("m")), None, m)
        for p in [f"b{i}" for i in range(n_benign)] + [f"m{i}" for i in range(n_malignant)]
        for m in ("40X", "100X", "200X", "400X")
    ]


@pytest.mark.parametrize("n_benign,n_malignant", [(5, 5), (24, 58), (400, 900)])
def test_validation_split_is_a_stratified_share_of_training_patients(n_benign, n_malignant):
    records = _records(n_benign, n_malignant)
    splits = make_splits(records, n_folds=5, seed=1, val_fraction=0.15)
    whole = n_malignant / (n_benign + n_malignant)
    for f in splits.folds:
        assert not set(f.val_patients) & set(f.test_patients)
        train_val = f.train_patients + f.val_patients
        for label in (0, 1):
            n = sum(splits.patient_labels[p] == label for p in train_val)
            v = sum(splits.patient_labels[p] == label for p in f.val_patients)
            assert 1 <= v < n  # every class validated, never all of a class taken from training
            assert v == min(n - 1, max(1, round(0.15 * n)))
        # test folds keep the class balance of the whole
        share = sum(splits.patient_labels[p] for p in f.test_patients) / len(f.test_patients)
        assert abs(share - whole) <= 1 / len(f.test_patients) + 1e-9


def test_no_validation_split_when_fraction_is_zero():
    splits = make_splits(_records(6, 6), n_folds=3, val_fraction=0)
    assert all(not f.val_patients for f in splits.folds)


def test_check_names_patients_unknown_to_the_splits(synthetic_records):
    splits = make_splits(synthetic_records, n_folds=4, seed=0)
    splits.check(synthetic_records)
    with pytest.raises(ValueError, match="1 patient"):
        splits.check(_records(1, 0))


def test_bad_splits_file_is_a_clear_error(tmp_path):
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid splits file"):
        Splits.load(tmp_path / "s.json")

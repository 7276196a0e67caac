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


# --- per-patch labels (IDC-like: every patient holds both classes) -------------------------------------


def _patch_records(n_patients=20, size=50):
    """``n_patients`` patients of about ``size`` patches each (45-55), malignant share 15-45 % spread over them:
    data whose patient-level folds can keep every test fold's malignant share close to the whole's."""
    from trainer.data.records import Record

    out = []
    for k in range(n_patients):
        n = size + (k * 7) % 11 - 5
        m = round(n * (0.15 + 0.30 * ((k * 13) % n_patients) / (n_patients - 1)))
        out += [Record(f"{9000 + k}_{i}.png", str(9000 + k), int(i < m), None, "40X", "idc") for i in range(n)]
    return out


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_patch_level_folds_are_patient_disjoint_and_keep_the_malignant_share(seed):
    records = _patch_records()
    patients = {r.patient_id for r in records}
    splits = make_splits(records, n_folds=5, seed=seed, val_fraction=0.15, label_level="patch")
    assert splits.label_level == "patch" and len(splits.folds) == 5
    tests = [set(f.test_patients) for f in splits.folds]
    assert sorted(p for t in tests for p in t) == sorted(patients)  # every patient in exactly one test fold
    whole = sum(r.label for r in records) / len(records)
    for f in splits.folds:
        train, val, test = map(set, (f.train_patients, f.val_patients, f.test_patients))
        assert not (train & val or train & test or val & test)
        assert train | val | test == patients
        assert val  # about val_fraction of the training patients validate
        tr, va, te = f.partition(records)
        assert {r.patient_id for r in te} == test and {r.patient_id for r in tr} == train
        share = sum(r.label for r in te) / len(te)
        assert abs(share - whole) < 0.04, (f.fold, share, whole)
        assert {r.label for r in va} == {0, 1}


def test_patch_level_folds_are_reproducible_and_round_trip(tmp_path):
    records = _patch_records(12)
    a = make_splits(records, n_folds=3, seed=5, label_level="patch")
    assert a == make_splits(records, n_folds=3, seed=5, label_level="patch")
    assert Splits.load(a.save(tmp_path / "s.json")) == a


def test_patch_level_folds_need_each_class_in_enough_patients():
    from trainer.data.records import Record

    records = [Record(f"{p}-{i}.png", p, int(p == "m" and i == 0)) for p in ("a", "b", "c", "m") for i in range(3)]
    with pytest.raises(ValueError, match="at least 3 patients"):
        make_splits(records, n_folds=3, label_level="patch")


def test_subsample_keeps_every_patient_and_class_and_about_the_fraction():
    from trainer.data.splits import subsample_per_patient

    records = _patch_records()
    kept = subsample_per_patient(records, 0.3, seed=4)
    assert abs(len(kept) - 0.3 * len(records)) <= 0.02 * len(records)
    before = Counter((r.patient_id, r.label) for r in records)
    after = Counter((r.patient_id, r.label) for r in kept)
    assert set(after) == set(before)  # every patient keeps both of its classes
    for key, n in before.items():
        assert after[key] == max(1, round(0.3 * n))
    assert kept == [r for r in records if r in set(kept)]  # order kept
    assert kept == subsample_per_patient(records, 0.3, seed=4)  # same seed, same patches
    assert kept != subsample_per_patient(records, 0.3, seed=5)
    assert subsample_per_patient(records, None, 0) == records == subsample_per_patient(records, 1.0, 0)
    with pytest.raises(ValueError, match="subsample"):
        subsample_per_patient(records, 0, 0)


def test_train_patients_keeps_whole_patients_every_class_and_the_share():
    from trainer.data.records import Record
    from trainer.data.splits import subsample_patients

    records = _patch_records()
    patients = sorted({r.patient_id for r in records})
    kept = subsample_patients(records, 0.5, seed=1)
    kept_patients = {r.patient_id for r in kept}
    assert len(kept_patients) == round(0.5 * len(patients))
    assert kept == [r for r in records if r.patient_id in kept_patients]  # whole patients, order kept
    assert kept == subsample_patients(records, 0.5, seed=1)
    assert subsample_patients(records, None, 0) == records == subsample_patients(records, 1.0, 0)
    with pytest.raises(ValueError, match="train_patients"):
        subsample_patients(records, 0, 0)
    # one patient alone holds class 1: every draw keeps it, however small the share
    one = [Record(f"{p}-{i}.png", p, int(p == "m")) for p in ("a", "b", "c", "d", "e", "m") for i in range(2)]
    for seed in range(10):
        got = subsample_patients(one, 0.2, seed)
        assert {r.label for r in got} == {0, 1} and len({r.patient_id for r in got}) >= 2

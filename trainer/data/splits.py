"""Patient-level stratified K-fold with an inner validation split, saved to / loaded from JSON.

Folds are defined over *patients*, so a patient's images at every magnification fall in the same fold
and every model in a comparison sees identical folds. With per-patient labels (BreakHis) patients are
stratified by their diagnosis; with per-patch labels (IDC: every patient holds both classes) patches are
grouped by patient and stratified by patch label (scikit-learn's ``StratifiedGroupKFold``), so each test
fold's malignant share stays close to the dataset's. ``groups`` (``trainer.data.grouping``) keeps several patient
ids in one part of every fold (BreakHis slides that may be one person); the folds still list the ids."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from trainer.data.records import Record

SPLITS_VERSION = 1


@dataclass
class Fold:
    fold: int
    train_patients: list[str]
    val_patients: list[str]
    test_patients: list[str]

    def partition(self, records: Iterable[Record]) -> tuple[list[Record], list[Record], list[Record]]:
        train, val, test = set(self.train_patients), set(self.val_patients), set(self.test_patients)
        out: tuple[list[Record], list[Record], list[Record]] = ([], [], [])
        for r in records:
            if r.patient_id in test:
                out[2].append(r)
            elif r.patient_id in val:
                out[1].append(r)
            elif r.patient_id in train:
                out[0].append(r)
        return out


@dataclass
class Splits:
    seed: int
    n_folds: int
    val_fraction: float
    folds: list[Fold]
    patient_labels: dict[str, int] = field(default_factory=dict)
    version: int = SPLITS_VERSION
    label_level: str = "patient"  # records.LABEL_LEVELS: how the folds were stratified
    patient_groups: dict[str, str] = field(default_factory=dict)  # id -> its group, for ids kept together

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
        return path

    def check(self, records: Iterable[Record]) -> None:
        """Raise ``ValueError`` if ``records`` hold patients these splits do not know (splits made from
        another dataset), naming a few of them."""
        known = set(self.patient_labels) or {
            p for f in self.folds for p in (*f.train_patients, *f.val_patients, *f.test_patients)
        }
        unknown = sorted({r.patient_id for r in records} - known)
        if unknown:
            raise ValueError(
                f"{len(unknown)} patient(s) are in no fold of these splits (made from another dataset?): "
                f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}"
            )

    def check_groups(self, groups: dict[str, str]) -> None:
        """Raise ``ValueError`` if the ids of one group (``trainer.data.grouping``) fall in different parts of a
        fold (splits made with ``data.patient_grouping: slide`` used where ``group`` is asked for)."""
        members: dict[str, list[str]] = {}
        for pid, g in groups.items():
            members.setdefault(g, []).append(pid)
        for f in self.folds:
            part = {
                p: name
                for name, ids in (("train", f.train_patients), ("val", f.val_patients), ("test", f.test_patients))
                for p in ids
            }
            for ids in members.values():
                where = {part[p] for p in ids if p in part}
                if len(where) > 1:
                    raise ValueError(
                        f"fold {f.fold} puts {', '.join(sorted(ids))} (one patient group, data.patient_grouping: group) "
                        f"in different parts ({', '.join(sorted(where))}); make new splits or set data.patient_grouping=slide"
                    )

    @classmethod
    def load(cls, path: str | Path) -> Splits:
        try:
            data = json.loads(Path(path).read_text())
            folds = [Fold(**f) for f in data.pop("folds")]
            return cls(folds=folds, **data)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}: not a valid splits file ({exc})") from None


def _patient_labels(records: Sequence[Record]) -> dict[str, int]:
    """Majority label per patient (a patient under both classes is reported by the index, not here)."""
    votes: dict[str, Counter] = {}
    for r in records:
        votes.setdefault(r.patient_id, Counter())[r.label] += 1
    return {p: c.most_common(1)[0][0] for p, c in sorted(votes.items())}


def _validation_patients(patients: list[str], plabels: dict[str, int], fraction: float, seed: int) -> list[str]:
    """``fraction`` of each class's patients (rounded, at least one when the class has two or more, never all
    of them), drawn with ``seed``: exact stratification for 10 patients or 10,000."""
    if fraction <= 0:
        return []
    rng = np.random.default_rng(seed)
    val: list[str] = []
    for label in sorted({plabels[p] for p in patients}):
        group = sorted(p for p in patients if plabels[p] == label)
        if len(group) < 2:
            continue
        k = min(len(group) - 1, max(1, round(fraction * len(group))))
        val += [group[i] for i in rng.permutation(len(group))[:k]]
    return sorted(val)


def make_splits(
    records: Sequence[Record],
    n_folds: int = 5,
    seed: int = 42,
    val_fraction: float = 0.15,
    *,
    label_level: str = "patient",
    groups: dict[str, str] | None = None,
) -> Splits:
    """Build patient-disjoint, label-stratified folds; each fold's validation patients come from its training
    patients (``val_fraction`` of them). Patients are grouped before splitting, so a patient's images at every
    magnification land in the same part. ``label_level="patch"`` (per-patch labels, see the module docstring)
    stratifies patches instead of patients. ``groups`` (patient id -> group id) keeps each group's ids in one part:
    the folds are made over groups, then list each group's ids."""
    if groups:
        return _grouped_splits(records, n_folds, seed, val_fraction, label_level, groups)
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), not {val_fraction}")
    if n_folds < 2:
        raise ValueError(f"need at least 2 folds, not {n_folds}")
    if label_level == "patch":
        return _patch_level_splits(records, n_folds, seed, val_fraction)
    plabels = _patient_labels(records)
    patients = list(plabels)
    labels = [plabels[p] for p in patients]
    counts = Counter(labels)
    if len(patients) < n_folds or min(counts.values(), default=0) < n_folds:
        raise ValueError(
            f"cannot make {n_folds} patient-level folds: {len(patients)} patients "
            f"({counts.get(0, 0)} benign, {counts.get(1, 0)} malignant); every class needs at least {n_folds} patients"
        )
    # One row per patient, so stratified K-fold over patients is exactly patient-level stratified group K-fold.
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = []
    for k, (_, test_idx) in enumerate(skf.split(np.zeros(len(patients)), labels)):
        test = sorted(patients[i] for i in test_idx)
        held = set(test)
        rest = [p for p in patients if p not in held]
        val = _validation_patients(rest, plabels, val_fraction, seed * 1000 + k)
        train = sorted(set(rest) - set(val))
        folds.append(Fold(k, train, val, test))
    return Splits(seed=seed, n_folds=n_folds, val_fraction=val_fraction, folds=folds, patient_labels=plabels)


def _grouped_splits(
    records: Sequence[Record], n_folds: int, seed: int, val_fraction: float, label_level: str, groups: dict[str, str]
) -> Splits:
    as_groups = [dataclasses.replace(r, patient_id=groups.get(r.patient_id, r.patient_id)) for r in records]
    made = make_splits(as_groups, n_folds, seed, val_fraction, label_level=label_level)
    ids = sorted({r.patient_id for r in records})
    members: dict[str, list[str]] = {}
    for pid in ids:
        members.setdefault(groups.get(pid, pid), []).append(pid)

    def expand(ids: list[str]) -> list[str]:
        return sorted(p for g in ids for p in members[g])

    folds = [
        Fold(f.fold, expand(f.train_patients), expand(f.val_patients), expand(f.test_patients)) for f in made.folds
    ]
    used = {pid: groups[pid] for pid in ids if pid in groups}
    return dataclasses.replace(made, folds=folds, patient_labels=_patient_labels(records), patient_groups=used)


def _group_split(labels: np.ndarray, groups: np.ndarray, n_splits: int, seed: int):
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(
        np.zeros(len(labels)), labels, groups
    )


def _patch_level_splits(records: Sequence[Record], n_folds: int, seed: int, val_fraction: float) -> Splits:
    """Per-patch labels: ``StratifiedGroupKFold`` over patches (groups = patients, strata = patch labels) for
    the test folds, and again inside each fold's training patients for its validation patients."""
    plabels = _patient_labels(records)
    patients = np.asarray(list(plabels))
    groups = np.asarray([r.patient_id for r in records])
    labels = np.asarray([r.label for r in records])
    holding = {y: len({g for g, lab in zip(groups, labels, strict=True) if lab == y}) for y in (0, 1)}
    if len(patients) < n_folds or min(holding.values()) < n_folds:
        raise ValueError(
            f"cannot make {n_folds} patient-level folds: {len(patients)} patients ({holding[0]} with benign "
            f"patches, {holding[1]} with malignant ones); each class must be held by at least {n_folds} patients"
        )
    folds = []
    for k, (rest_idx, test_idx) in enumerate(_group_split(labels, groups, n_folds, seed)):
        test = sorted(set(groups[test_idx]))
        rest = sorted(set(groups[rest_idx]))
        val: list[str] = []
        n_val = round(val_fraction * len(rest))
        if val_fraction > 0 and len(rest) >= 3 and n_val >= 1:
            # One inner split of about val_fraction of the training patients, stratified by patch label.
            inner = max(2, min(len(rest), round(1 / val_fraction)))
            _, val_idx = next(_group_split(labels[rest_idx], groups[rest_idx], inner, seed * 1000 + k))
            val = sorted(set(groups[rest_idx][val_idx]))
        train = sorted(set(rest) - set(val))
        folds.append(Fold(k, train, val, test))
    return Splits(
        seed=seed,
        n_folds=n_folds,
        val_fraction=val_fraction,
        folds=folds,
        patient_labels=plabels,
        label_level="patch",
    )


def subsample_per_patient(records: Sequence[Record], fraction: float | None, seed: int) -> list[Record]:
    """Keep ``fraction`` of each patient's images of each class (at least one of each), drawn with ``seed``:
    every patient and its class mix stay, only fewer patches (``data.subsample``). Order is kept."""
    if fraction is None or fraction >= 1:
        return list(records)
    if not 0 < fraction < 1:
        raise ValueError(f"data.subsample must be in (0, 1], not {fraction}")
    groups: dict[tuple[str, int], list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault((r.patient_id, r.label), []).append(i)
    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    for key in sorted(groups):
        idx = groups[key]
        k = max(1, round(fraction * len(idx)))
        keep.update(idx[j] for j in rng.permutation(len(idx))[:k])
    return [r for i, r in enumerate(records) if i in keep]


def subsample_patients(records: Sequence[Record], fraction: float | None, seed: int) -> list[Record]:
    """Keep ``fraction`` of the patients, whole (every image of each), drawn with ``seed`` (``data.train_patients``:
    a learning curve over training patients). At least two patients, and every class the records hold stays (the
    draw goes on past ``fraction`` until a patient holding each class is in). Order is kept."""
    if fraction is None or fraction >= 1:
        return list(records)
    if not 0 < fraction < 1:
        raise ValueError(f"data.train_patients must be in (0, 1], not {fraction}")
    classes: dict[str, set[int]] = {}
    for r in records:
        classes.setdefault(r.patient_id, set()).add(r.label)
    patients = sorted(classes)
    k = max(2, round(fraction * len(patients)))
    missing = {r.label for r in records}
    keep: set[str] = set()
    for i in np.random.default_rng(seed).permutation(len(patients)):
        p = patients[i]
        if len(keep) < k or classes[p] & missing:
            keep.add(p)
            missing -= classes[p]
        if len(keep) >= k and not missing:
            break
    return [r for r in records if r.patient_id in keep]

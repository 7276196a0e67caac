"""Patient-level stratified K-fold with an inner validation split, saved to / loaded from JSON.

Folds are defined over *patients*, so a patient's images at every magnification fall in the same fold
and every model in a comparison sees identical folds."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

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

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Splits":
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


def _stratified_patient_split(patients: list[str], labels: list[int], n: int, seed: int) -> list[list[int]]:
    """Indices of ``n`` patient groups, stratified by label (one record per patient here)."""
    n = max(2, min(n, min(Counter(labels).values()) if len(set(labels)) > 1 else len(patients)))
    sgkf = StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)
    x = np.zeros(len(patients))
    return [list(test) for _, test in sgkf.split(x, labels, groups=patients)]


def make_splits(records: Sequence[Record], n_folds: int = 5, seed: int = 42, val_fraction: float = 0.15) -> Splits:
    """Build patient-disjoint, label-stratified folds; each fold's validation patients come from its training patients."""
    plabels = _patient_labels(records)
    patients = list(plabels)
    labels = [plabels[p] for p in patients]
    counts = Counter(labels)
    if len(patients) < n_folds or (len(counts) > 1 and min(counts.values()) < n_folds):
        raise ValueError(
            f"cannot make {n_folds} patient-level folds: {len(patients)} patients "
            f"({counts.get(0, 0)} benign, {counts.get(1, 0)} malignant); every class needs at least {n_folds} patients"
        )
    folds = []
    for k, test_idx in enumerate(_stratified_patient_split(patients, labels, n_folds, seed)):
        test = sorted(patients[i] for i in test_idx)
        rest = [p for p in patients if p not in set(test)]
        rest_labels = [plabels[p] for p in rest]
        n_val_groups = max(2, round(1 / val_fraction)) if val_fraction > 0 else 0
        val: list[str] = []
        if n_val_groups and len(rest) >= 4:
            groups = _stratified_patient_split(rest, rest_labels, n_val_groups, seed + 1000 + k)
            val = sorted(rest[i] for i in groups[0])
        train = sorted(p for p in rest if p not in set(val))
        folds.append(Fold(k, train, val, test))
    return Splits(seed=seed, n_folds=n_folds, val_fraction=val_fraction, folds=folds, patient_labels=plabels)

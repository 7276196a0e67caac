"""The one record type every data source produces, and the label vocabularies of the study."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

LABELS: tuple[str, str] = ("benign", "malignant")
MAGNIFICATIONS: tuple[str, ...] = ("40X", "100X", "200X", "400X")
# BreakHis subtype codes in the order used for the 8-class task (4 benign, then 4 malignant).
SUBTYPES: tuple[str, ...] = ("A", "F", "PT", "TA", "DC", "LC", "MC", "PC")
SUBTYPE_NAMES: dict[str, str] = {
    "A": "adenosis",
    "F": "fibroadenoma",
    "PT": "phyllodes_tumor",
    "TA": "tubular_adenoma",
    "DC": "ductal_carcinoma",
    "LC": "lobular_carcinoma",
    "MC": "mucinous_carcinoma",
    "PC": "papillary_carcinoma",
}
SUBTYPE_LABEL: dict[str, int] = {code: (0 if i < 4 else 1) for i, code in enumerate(SUBTYPES)}
# Who a label belongs to. "patient": every image of a patient carries the patient's diagnosis (BreakHis, BACH);
# "patch": each patch is labelled on its own, so one patient holds both classes (IDC, PCam-like data).
LABEL_LEVELS: tuple[str, str] = ("patient", "patch")


@dataclass(frozen=True)
class Record:
    """One image patch. ``label`` is 0 (benign) / 1 (malignant); subtype and magnification may be unknown."""

    path: str
    patient_id: str
    label: int
    subtype: str | None = None
    magnification: str | None = None
    dataset: str = "breakhis"
    # Where the patch was cut from its slide (IDC names carry it), in slide pixels; None when unknown.
    x: int | None = None
    y: int | None = None

    @property
    def image_id(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def subtype_index(self) -> int:
        return SUBTYPES.index(self.subtype) if self.subtype in SUBTYPES else -1

    def to_dict(self) -> dict:
        return asdict(self)


def class_names(target: str) -> list[str]:
    """A run's classes for its ``data.target``: ``label`` (benign, malignant) or ``subtype`` (the 8 codes)."""
    return list(LABELS) if target == "label" else list(SUBTYPES)


# --- which classes are malignant: this rule, and SUBTYPE_LABEL behind it, are the only place that says --------
def is_malignant(class_name: str) -> bool:
    """A model's class is malignant when it is "malignant" or a malignant BreakHis subtype (SUBTYPE_LABEL)."""
    return class_name == LABELS[1] or SUBTYPE_LABEL.get(class_name) == 1


def malignant_columns(classes: Sequence[str]) -> list[int]:
    """Indices of the malignant classes in ``classes``: P(malignant) is the sum of their probabilities."""
    return [i for i, c in enumerate(classes) if is_malignant(c)]


def malignant_truth(targets: Sequence[int], classes: Sequence[str]) -> list[int]:
    """Benign (0) / malignant (1) of each target, given as an index into ``classes`` (the run's target)."""
    malignant = set(malignant_columns(classes))
    return [int(int(t) in malignant) for t in targets]


def normalise_magnification(value: str | int | None) -> str | None:
    """'40', 40, '40x', '40X' -> '40X'; None/'' -> None; anything else raises ValueError."""
    if value is None or value == "":
        return None
    text = str(value).strip().upper().rstrip("X")
    mag = f"{text}X"
    if mag not in MAGNIFICATIONS:
        raise ValueError(f"unknown magnification {value!r}; expected one of {', '.join(MAGNIFICATIONS)}")
    return mag

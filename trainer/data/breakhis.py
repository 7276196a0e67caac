"""BreakHis file-name parsing: ``SOB_<B|M>_<SUBTYPE>-<YY>-<SLIDE>-<MAG>-<SEQ>.<png|jpg>``."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from trainer.data.records import MAGNIFICATIONS, SUBTYPE_LABEL, SUBTYPE_NAMES, SUBTYPES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_NAME = re.compile(
    r"^SOB_(?P<cls>[BM])_(?P<sub>[A-Z]{1,2})-(?P<yy>\d{2})-(?P<slide>[0-9A-Za-z]+)-(?P<mag>40|100|200|400)-(?P<seq>\d+)"
    r"\.(?P<ext>png|jpe?g|tiff?)$",
    re.IGNORECASE,
)


# A magnification written as its own token in any file name: "..._400X_...", "img-40x.png".
_MAG_TOKEN = re.compile(r"(?:^|[_\-. ])(40|100|200|400)X(?=$|[_\-. ])", re.IGNORECASE)


@dataclass(frozen=True)
class BreakHisName:
    label: int
    subtype: str
    year: str
    slide: str
    magnification: str
    seq: int

    @property
    def patient_id(self) -> str:
        # Patients are identified by slide id (year + slide), as in the dataset's own folder names.
        return f"{self.year}-{self.slide}"


def parse_name(filename: str) -> BreakHisName:
    """Parse a BreakHis file name (a bare name or a path). Raises ValueError naming the file if it is not one."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    m = _NAME.match(name)
    if not m:
        raise ValueError(
            f"not a BreakHis file name: {name!r} (expected SOB_<B|M>_<SUBTYPE>-<YY>-<SLIDE>-<MAG>-<SEQ>.png)"
        )
    sub = m["sub"].upper()
    if sub not in SUBTYPES:
        raise ValueError(f"unknown BreakHis subtype code {sub!r} in {name!r}; expected one of {', '.join(SUBTYPES)}")
    label = 1 if m["cls"].upper() == "M" else 0
    if SUBTYPE_LABEL[sub] != label:
        raise ValueError(f"class {m['cls']} contradicts subtype {sub} ({SUBTYPE_NAMES[sub]}) in {name!r}")
    return BreakHisName(label, sub, m["yy"], m["slide"].upper(), f"{m['mag']}X", int(m["seq"]))


def canonical_relpath(parsed: BreakHisName) -> str:
    """Where a parsed file lives in the official layout below the dataset root."""
    cls = "malignant" if parsed.label else "benign"
    c = "M" if parsed.label else "B"
    folder = f"SOB_{c}_{parsed.subtype}_{parsed.patient_id}"
    mag = parsed.magnification[:-1]
    name = f"SOB_{c}_{parsed.subtype}-{parsed.patient_id}-{mag}-{parsed.seq:03d}.png"
    return f"BreaKHis_v1/histology_slides/breast/{cls}/SOB/{SUBTYPE_NAMES[parsed.subtype]}/{folder}/{parsed.magnification}/{name}"


# The official BreakHis v1 counts (Spanhol et al., IEEE TBME 2016, Table I): images per magnification x subtype.
# Totals: 7,909 images (40X 1,995; 100X 2,081; 200X 2,013; 400X 1,820), benign 2,480, malignant 5,429.
OFFICIAL_COUNTS: dict[str, dict[str, int]] = {
    "A": dict(zip(MAGNIFICATIONS, (114, 113, 111, 106), strict=True)),
    "F": dict(zip(MAGNIFICATIONS, (253, 260, 264, 237), strict=True)),
    "PT": dict(zip(MAGNIFICATIONS, (109, 121, 108, 115), strict=True)),
    "TA": dict(zip(MAGNIFICATIONS, (149, 150, 140, 130), strict=True)),
    "DC": dict(zip(MAGNIFICATIONS, (864, 903, 896, 788), strict=True)),
    "LC": dict(zip(MAGNIFICATIONS, (156, 170, 163, 137), strict=True)),
    "MC": dict(zip(MAGNIFICATIONS, (205, 222, 196, 169), strict=True)),
    "PC": dict(zip(MAGNIFICATIONS, (145, 142, 135, 138), strict=True)),
}
# Patients (slide folders) per subtype: 24 benign + 58 malignant = 82.
OFFICIAL_PATIENTS: dict[str, int] = {"A": 4, "F": 10, "PT": 3, "TA": 7, "DC": 38, "LC": 5, "MC": 9, "PC": 6}


def official_mag_label_counts() -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for sub, per_mag in OFFICIAL_COUNTS.items():
        for mag, n in per_mag.items():
            key = (mag, SUBTYPE_LABEL[sub])
            out[key] = out.get(key, 0) + n
    return out


def compare_with_official(records) -> list[str]:
    """Differences between indexed BreakHis records and the official counts, one line per cell that
    differs (magnification x class, magnification x subtype, patients); an empty list means they match."""
    have_ml = Counter((r.magnification, r.label) for r in records)
    have_ms = Counter((r.magnification, r.subtype) for r in records)
    out = []
    for (mag, label), want in sorted(
        official_mag_label_counts().items(), key=lambda kv: (kv[0][1], int(kv[0][0][:-1]))
    ):
        got = have_ml.get((mag, label), 0)
        if got != want:
            out.append(f"{mag} {'malignant' if label else 'benign'}: {got} images, official {want} ({got - want:+d})")
    for sub, per_mag in OFFICIAL_COUNTS.items():
        for mag, want in per_mag.items():
            got = have_ms.get((mag, sub), 0)
            if got != want:
                out.append(f"{mag} {sub} ({SUBTYPE_NAMES[sub]}): {got} images, official {want} ({got - want:+d})")
    # Patients are counted by slide id. The official 82 counts slide folders (subtype + slide id); a slide id
    # filed under two subtypes is one patient for the folds (the index reports it), so it is accepted here
    # when the folder count is right.
    slides = {r.patient_id for r in records}
    folders = Counter(sub for sub, _ in {(r.subtype, r.patient_id) for r in records})
    want_total = sum(OFFICIAL_PATIENTS.values())
    if len(slides) != want_total and sum(folders.values()) != want_total:
        out.append(
            f"patients: {len(slides)} slide ids ({sum(folders.values())} subtype folders), official {want_total}"
        )
    for sub, want in OFFICIAL_PATIENTS.items():
        if folders.get(sub, 0) != want:
            out.append(f"patients {sub} ({SUBTYPE_NAMES[sub]}): {folders.get(sub, 0)}, official {want}")
    return out


def magnification_in_name(filename: str) -> str | None:
    """The magnification a file name states (a BreakHis name, or a ``40X``..``400X`` token); None when it does not."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        return parse_name(name).magnification
    except ValueError:
        found = _MAG_TOKEN.search(name.rsplit(".", 1)[0])
        return f"{found[1]}X" if found else None

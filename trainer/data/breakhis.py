"""BreakHis file-name parsing: ``SOB_<B|M>_<SUBTYPE>-<YY>-<SLIDE>-<MAG>-<SEQ>.<png|jpg>``."""
from __future__ import annotations

import re
from dataclasses import dataclass

from trainer.data.records import SUBTYPE_LABEL, SUBTYPE_NAMES, SUBTYPES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_NAME = re.compile(
    r"^SOB_(?P<cls>[BM])_(?P<sub>[A-Z]{1,2})-(?P<yy>\d{2})-(?P<slide>[0-9A-Za-z]+)-(?P<mag>40|100|200|400)-(?P<seq>\d+)"
    r"\.(?P<ext>png|jpe?g|tiff?)$",
    re.IGNORECASE,
)


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
        raise ValueError(f"not a BreakHis file name: {name!r} (expected SOB_<B|M>_<SUBTYPE>-<YY>-<SLIDE>-<MAG>-<SEQ>.png)")
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

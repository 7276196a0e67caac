import pytest

from trainer.data.breakhis import canonical_relpath, parse_name
from trainer.data.records import SUBTYPE_LABEL, SUBTYPES


@pytest.mark.parametrize("code", SUBTYPES)
def test_every_subtype_code_parses(code):
    cls = "M" if SUBTYPE_LABEL[code] else "B"
    parsed = parse_name(f"SOB_{cls}_{code}-14-22549AB-400-012.png")
    assert parsed.subtype == code
    assert parsed.label == SUBTYPE_LABEL[code]
    assert parsed.magnification == "400X"
    assert parsed.patient_id == "14-22549AB"
    assert parsed.seq == 12


def test_parses_path_and_jpg():
    p = parse_name("/x/y/SOB_M_DC-14-2523-100-003.JPG")
    assert (p.subtype, p.magnification, p.patient_id, p.label) == ("DC", "100X", "14-2523", 1)


@pytest.mark.parametrize(
    "bad",
    [
        "random.png",
        "SOB_B_XX-14-22549AB-40-001.png",  # unknown subtype
        "SOB_B_DC-14-22549AB-40-001.png",  # benign class with a malignant subtype
        "SOB_B_A-14-22549AB-50-001.png",  # magnification not in the study
        "SOB_B_A-14-22549AB-40-001.txt",
    ],
)
def test_bad_names_raise_with_the_name(bad):
    with pytest.raises(ValueError, match="SOB|subtype|contradicts|BreakHis"):
        parse_name(bad)


def test_canonical_path_round_trips():
    p = parse_name("SOB_B_PT-14-21998AB-200-005.png")
    rel = canonical_relpath(p)
    assert rel.startswith("BreaKHis_v1/histology_slides/breast/benign/SOB/phyllodes_tumor/SOB_B_PT_14-21998AB/200X/")
    assert parse_name(rel) == p

"""The shipped example patches (assets/examples): real IDC and BreakHis files, named by what they are, each
listed in the folder's README."""

from PIL import Image

from histoapp.ui.examples import EXAMPLES_DIR, list_examples
from trainer.data.records import MAGNIFICATIONS


def test_shipped_examples_are_real_named_files_listed_in_the_readme():
    examples = list_examples()
    readme = (EXAMPLES_DIR / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# Example patches (real tissue)")
    by_dataset: dict[str, list[dict]] = {"idc": [], "breakhis": []}
    for e in examples:
        name = e["path"].rsplit("/", 1)[-1]
        dataset = name.split("_", 1)[0]
        assert dataset in by_dataset, name
        assert e["label"] in ("benign", "malignant"), name
        assert e["magnification"] in MAGNIFICATIONS, name
        assert "_patient" in name, name
        assert f"`{name}`" in readme, f"{name} is not described in assets/examples/README.md"
        by_dataset[dataset].append(e)
    idc, breakhis = by_dataset["idc"], by_dataset["breakhis"]
    assert {e["label"] for e in idc} == {e["label"] for e in breakhis} == {"benign", "malignant"}
    assert {e["magnification"] for e in breakhis} == set(MAGNIFICATIONS)
    for e in idc:
        with Image.open(e["path"]) as im:
            assert im.size == (50, 50) and im.format == "PNG"
        assert e["magnification"] == "40X"
    patients = [e["path"].rsplit("_patient", 1)[1] for e in idc]
    assert len(set(patients)) == len(patients)  # each IDC tile from a different patient

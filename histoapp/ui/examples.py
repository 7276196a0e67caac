"""The bundled example patches (``assets/examples/``), listed for the Predict tab.

They are real tissue: IDC tiles and BreakHis images copied byte for byte by ``scripts/make_examples.py`` (which
says how they were chosen; ``assets/examples/README.md`` lists each file, its source and licence). Each file's
name says what it is (``idc_malignant_40X_patient13401.png``,
``breakhis_benign_fibroadenoma_100X_patient14-21998CD.jpg``): the button titles, the class and the
magnification are read from it.
"""

from __future__ import annotations

import re
from pathlib import Path

from histoapp.settings import ASSETS

EXAMPLES_DIR = ASSETS / "examples"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# The Predict tab shows one group of examples per dataset, in this order, each under its heading; a file named
# by no known dataset goes to "other".
DATASETS = {
    "idc": "IDC patches (50x50 px at 40X: what the demo models were trained on)",
    "breakhis": "BreakHis images (700x460 px at 40X-400X: not what the demo models were trained on)",
    "other": "Other examples",
}
TITLE_MAX = 60  # Gradio cuts an example's label after this many characters


def example_title(path: str | Path) -> str:
    """A button label naming what the patch is, from its file name (each example's name says what it is); the
    dataset's name is left to the group's heading."""
    words = [t for t in re.split(r"[_\s]+", Path(path).stem) if t]
    if words and words[0].lower() in DATASETS:
        words = words[1:]
    return " · ".join(w if any(c.isdigit() for c in w) else w.replace("-", " ") for w in words)


def list_examples(folder: str | Path = EXAMPLES_DIR) -> list[dict]:
    """``[{"path", "title", "dataset", "label", "magnification"}]`` of every image in ``folder``, read from the file
    names (``label`` benign/malignant when the name says so, ``magnification`` "unknown" when it does not,
    ``dataset`` a key of ``DATASETS``), grouped by dataset, then sorted by magnification and title."""
    from trainer.data.breakhis import magnification_in_name
    from trainer.data.records import MAGNIFICATIONS

    out = []
    for p in sorted(Path(folder).glob("*")) if Path(folder).is_dir() else []:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        words = {w.lower() for w in re.split(r"[_\-.\s]+", p.stem)}
        label = next((c for c in ("malignant", "benign") if c in words), None)
        mag = magnification_in_name(p.name) or "unknown"
        first = p.stem.split("_", 1)[0].lower()
        dataset = first if first in DATASETS else "other"
        out.append(
            {"path": str(p), "title": example_title(p), "dataset": dataset, "label": label, "magnification": mag}
        )
    order = {m: i for i, m in enumerate(MAGNIFICATIONS)}
    groups = list(DATASETS)
    return sorted(out, key=lambda e: (groups.index(e["dataset"]), order.get(e["magnification"], 9), e["title"]))

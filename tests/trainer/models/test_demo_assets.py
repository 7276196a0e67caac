"""The committed demo models load through load_checkpoint on their own and separate real IDC patches of patients
they never saw: idc-mini's patients 8863, 8917 and 8980 are in fold 0's test patients of the 211-patient split
(results/idc/idc211/splits.json), and both demo models are fold 0 of their runs on it."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "assets" / "models"
MINI = ROOT / "assets" / "data" / "idc-mini"
HELD_OUT = ("8863", "8917", "8980")


def _held_out_patches(per_class: int = 20):
    """The first ``per_class`` patches of each class of each held-out patient (no choosing by content)."""
    with open(MINI / "MANIFEST.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = [
        r
        for p in HELD_OUT
        for label in ("benign", "malignant")
        for r in [x for x in rows if x["patient_id"] == p and x["label"] == label][:per_class]
    ]
    return [Image.open(MINI / r["path"]).convert("RGB") for r in picked], np.array(
        [r["label"] == "malignant" for r in picked]
    )


def test_the_held_out_patients_are_fold_0_test_patients():
    splits = json.loads((ROOT / "results" / "idc" / "idc211" / "splits.json").read_text())
    assert set(HELD_OUT) <= set(splits["folds"][0]["test_patients"])
    for name in ("demo-cnn", "demo-vlm"):
        meta = json.loads((MODELS / name / "engine.json").read_text())
        assert meta["fold"] == 0 and meta["experiment"].startswith("idc211_"), meta


@pytest.mark.parametrize("name", ["demo-cnn", "demo-vlm"])
def test_demo_model_separates_real_patches_of_unseen_patients(name, tmp_path, monkeypatch):
    import torch

    from trainer.models import load_checkpoint

    monkeypatch.setenv("HISTOAPP_TINY_VLM_CACHE", str(tmp_path))  # the asset must not need the base model
    card = (MODELS / name / "card.md").read_text()
    assert "not a diagnostic device" in card and "real H&E" in card
    ck = load_checkpoint(MODELS / name, device="cpu")
    assert ck.classes == ["benign", "malignant"]
    assert not any(tmp_path.iterdir())
    images, truth = _held_out_patches()
    assert truth.any() and not truth.all()
    adapter = ck.adapter
    if adapter.family == "cnn":
        tf = adapter.transform(False, ck.input_size)
        with torch.no_grad():
            probs = adapter.predict_proba(adapter.collate([tf(im) for im in images], [0] * len(images)))[:, 1].numpy()
    else:
        probs = np.array([adapter.predict_image(im)["malignant"] for im in images])
        assert adapter.generate_answer(images[0], max_new_tokens=3) in {"benign", "malignant"}
        heat = adapter.attention_map(images[0])
        assert heat.shape == images[0].size[::-1] and heat.min() >= 0 and heat.max() <= 1
    # Measured when they were bundled (the 211-patient fold-0 models): AUC 0.932 (CNN) and 0.926 (VLM) on all 540
    # patches of these patients (the bars below leave room for a platform's float differences, not for a worse model).
    assert roc_auc_score(truth, probs) >= 0.85
    assert ((probs >= 0.5) == truth).mean() >= 0.7

"""The committed demo VLM loads through load_checkpoint and tells generated benign from malignant patches."""

from pathlib import Path

import numpy as np
import pytest

ASSET = Path(__file__).resolve().parents[4] / "assets" / "models" / "demo-vlm"


@pytest.mark.skipif(not (ASSET / "adapter.json").is_file(), reason="demo VLM asset not present")
def test_demo_vlm_loads_and_answers(tmp_path, monkeypatch):
    from trainer.data.synthetic import render_patch
    from trainer.evaluate import load_checkpoint

    monkeypatch.setenv("HISTOAPP_TINY_VLM_CACHE", str(tmp_path))  # the asset must not need the base model
    size = sum(p.stat().st_size for p in ASSET.rglob("*") if p.is_file())
    assert size < 5 * 2**20
    assert "not a diagnostic device" in (ASSET / "card.md").read_text()
    adapter, meta = load_checkpoint(ASSET, device="cpu")
    assert adapter.family == "vlm" and meta["classes"] == ["benign", "malignant"]
    assert not any(tmp_path.iterdir())
    rng = np.random.default_rng(7)  # patches the model never saw
    truth, probs, answers = [], [], []
    for i in range(8):
        malignant = i % 2 == 1
        image = render_patch(
            rng, 96, malignant, 4 + i % 4 if malignant else i % 4, ["40X", "100X", "200X", "400X"][i % 4]
        )
        truth.append(malignant)
        probs.append(adapter.predict_image(image)["malignant"])
        if i < 2:
            answers.append(adapter.generate_answer(image, max_new_tokens=3))
    accuracy = np.mean([(p >= 0.5) == t for p, t in zip(probs, truth, strict=True)])
    assert accuracy >= 0.75, (truth, probs)
    assert set(answers) <= {"benign", "malignant"}
    heat = adapter.attention_map(image)
    assert heat.shape == (96, 96) and heat.min() >= 0 and heat.max() <= 1

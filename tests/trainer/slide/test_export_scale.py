"""trainer export writes what one input covers (mpp, patch_px, patch_um) into the model's engine.json and card."""

from __future__ import annotations

import json


def test_export_run_writes_the_scale_it_knows(tmp_path, cv_run):
    from trainer.export import export_run, model_card
    from trainer.slide.scale import scale_meta

    out = export_run(cv_run, "resnet18", "40X", tmp_path / "m", title="t", dtype=None)
    meta = json.loads((out / "engine.json").read_text())
    expected = scale_meta({k: v for k, v in meta.items() if k not in ("mpp", "patch_px", "patch_um")})
    assert {k: meta.get(k) for k in ("mpp", "patch_px", "patch_um")} == {
        k: expected.get(k) for k in ("mpp", "patch_px", "patch_um")
    }
    assert ("one input covers" in (out / "card.md").read_text()) == bool(expected)
    card = model_card(cv_run, "resnet18", "40X", 0, title="t", commands=[], scale=scale_meta({"dataset": "idc"}))
    assert "| scale | one input covers 200 µm (50 px at 4 µm/px)" in card

import numpy as np
import torch
from safetensors.torch import load_file

from histoapp.models.export import export
from trainer.evaluate import load_checkpoint


def test_export_writes_fp16_weights_that_load_as_float32_and_predict_the_same(tmp_path, trained_run, tiny_checkpoint):
    out = export(
        trained_run / "tiny",
        "resnet18",
        "all",
        tmp_path / "demo",
        title="Tiny demo",
        commands=["python -m trainer cv ..."],
    )
    weights = load_file(str(out / "model.safetensors"))
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    assert (out / "model.safetensors").stat().st_size < 0.6 * (tiny_checkpoint / "model.safetensors").stat().st_size
    card = (out / "card.md").read_text()
    assert "not a diagnostic device" in card and "0.950" in card and "python -m trainer cv" in card
    full, _ = load_checkpoint(tiny_checkpoint, device="cpu")
    half, meta = load_checkpoint(out, device="cpu")
    assert meta["fold"] == 0 and all(p.dtype == torch.float32 for p in half.module.parameters())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert np.allclose(full.module(x).numpy(), half.module(x).numpy(), atol=5e-2)

"""A tiny CNN trained for a few steps on generated patches, saved as a finished fold of a run folder."""

from __future__ import annotations

import json

import pytest

TINY_SIZE = 64


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, synthetic_root, synthetic_records):
    """``runs_dir`` holding ``tiny/resnet18/all/fold0/best`` (+ the fold's metrics.json, as the runner writes)."""
    import torch

    from trainer.config import ModelConfig
    from trainer.models.cnn import CNNAdapter

    torch.manual_seed(0)
    adapter = CNNAdapter(ModelConfig(family="cnn", name="resnet18", pretrained=False))
    tf = adapter.transform(True, TINY_SIZE)
    opt = torch.optim.AdamW(adapter.module.parameters(), lr=1e-3)
    records = synthetic_records
    g = torch.Generator().manual_seed(0)
    adapter.module.train()
    from trainer.data.images import load_rgb

    images = [(tf, load_rgb(r.path), r.label) for r in records]
    for _ in range(25):
        idx = torch.randint(len(images), (16,), generator=g).tolist()
        batch = adapter.collate([images[i][0](images[i][1]) for i in idx], [images[i][2] for i in idx])
        loss = adapter.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    adapter.module.eval()
    runs = tmp_path_factory.mktemp("runs")
    fold = runs / "tiny" / "resnet18" / "all" / "fold0"
    adapter.save(fold / "best")
    (fold / "best" / "engine.json").write_text(
        json.dumps({"input_size": TINY_SIZE, "classes": ["benign", "malignant"], "fold": 0})
    )
    (fold / "metrics.json").write_text(
        json.dumps(
            {"model": "resnet18", "magnification": "all", "fold": 0, "metrics": {"accuracy": 0.9, "roc_auc": 0.95}}
        )
    )
    return runs


@pytest.fixture(scope="session")
def tiny_checkpoint(trained_run):
    return trained_run / "tiny" / "resnet18" / "all" / "fold0" / "best"


@pytest.fixture(scope="session")
def vlm_run(tmp_path_factory):
    """``runs_dir`` holding ``tinyvlm/tiny-lora/all/fold0/best``: a LoRA adapter on the tiny offline SmolVLM."""
    import torch

    from trainer.config import ModelConfig
    from trainer.models import build_adapter
    from trainer.models.vlm.tiny import build_tiny_vlm

    base = build_tiny_vlm("idefics3", tmp_path_factory.mktemp("tiny_vlm") / "idefics3")
    torch.manual_seed(0)
    adapter = build_adapter(ModelConfig(family="vlm", name=str(base), mode="lora", label="tiny-lora"), 2)
    adapter.transform(False, 32)
    runs = tmp_path_factory.mktemp("vlm_runs")
    fold = runs / "tinyvlm" / "tiny-lora" / "all" / "fold0"
    adapter.save(fold / "best")
    (fold / "metrics.json").write_text(
        json.dumps({"model": "tiny-lora", "magnification": "all", "fold": 0, "metrics": {"roc_auc": 0.5}})
    )
    return runs

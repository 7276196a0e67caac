"""Tiny SmolVLM (Idefics3) and Qwen2-VL models built once per session (no download), a fixed batch of
generated patches, and an adapter factory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

FAMILIES = ["idefics3", "qwen2_vl"]


@pytest.fixture(scope="session")
def tiny_vlms(tmp_path_factory):
    from trainer.models.vlm.tiny import build_tiny_vlm

    root = tmp_path_factory.mktemp("tiny_vlm")
    return {f: build_tiny_vlm(f, root / f) for f in FAMILIES}


@pytest.fixture(scope="session")
def patches():
    """Four 48 px patches, two pale (class 0) and two dark (class 1): a fixed batch the models can fit."""
    rng = np.random.default_rng(0)
    out = []
    for base in (200, 60, 210, 50):
        arr = np.clip(rng.normal(base, 25, size=(48, 48, 3)), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(arr))
    return out, [0, 1, 0, 1]


@pytest.fixture
def make_adapter(tiny_vlms):
    from trainer.config import LoRAConfig, ModelConfig
    from trainer.models import build_adapter

    def make(family: str, mode: str, num_classes: int = 2, **kw):
        torch.manual_seed(0)
        cfg = ModelConfig(
            family="vlm", name=str(tiny_vlms[family]), mode=mode, lora=LoRAConfig(**kw.pop("lora", {})), **kw
        )
        return build_adapter(cfg, num_classes)

    return make


def batch_of(adapter, patches, size: int = 32):
    images, targets = patches
    tf = adapter.transform(False, size)
    return adapter.collate([tf(im) for im in images], targets)

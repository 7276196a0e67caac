"""Models built to be explained: a tiny CNN whose answer depends only on the top-left quadrant's texture (so its
true evidence is known), a tiny VLM built from a config, and patches textured everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trainer.models.base import ModelAdapter

SIZE = 32
CLASSES = ["benign", "malignant"]


class QuadrantNet(nn.Module):
    """P(malignant) rises with the texture (squared Laplacian) of the top-left quadrant and ignores the rest."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1, bias=False)
        lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]) / 3
        with torch.no_grad():
            self.conv.weight.copy_(lap.expand(1, 3, 3, 3))

    def forward(self, x):
        energy = self.conv(x) ** 2
        h, w = x.shape[-2] // 2, x.shape[-1] // 2
        q = energy[:, :, :h, :w].mean(dim=(1, 2, 3))
        logit = 20.0 * (q - 0.28)
        return torch.stack([torch.zeros_like(logit), logit], dim=1), q[:, None]


class QuadrantAdapter(ModelAdapter):
    """The adapter contract (what trainer.predict scores) around ``QuadrantNet``."""

    family = "cnn"

    def __init__(self):
        from trainer.config import ModelConfig

        super().__init__(ModelConfig(family="cnn", name="quadrant", pretrained=False), 2)
        self._module = QuadrantNet().eval()

    @property
    def module(self):
        return self._module

    def transform(self, train, input_size, stain=None, color_jitter=0.1, hed_jitter=0.0):
        from trainer.data.transforms import build_transforms

        return build_transforms(input_size, train=False, normalize=False)

    def collate(self, samples, targets):
        return {"pixel_values": torch.stack(list(samples)), "labels": torch.as_tensor(list(targets))}

    def logits_and_features(self, batch):
        return self._module(batch["pixel_values"])

    def predict_proba(self, batch):
        return torch.softmax(self.logits_and_features(batch)[0], dim=1)

    def loss(self, batch):
        raise NotImplementedError

    def save(self, directory):
        raise NotImplementedError

    @classmethod
    def load(cls, directory, device="cpu"):
        raise NotImplementedError


@pytest.fixture(scope="session")
def quadrant_model():
    from trainer.models import Checkpoint

    return Checkpoint.of(QuadrantAdapter(), meta={"classes": CLASSES, "input_size": SIZE})


def textured(n: int, size: int = SIZE, seed: int = 0):
    """Uniform-noise patches: texture in every quadrant, so only the model's own quadrant matters."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_vlm_model(tmp_path_factory):
    """A LoRA adapter on the tiny offline SmolVLM (Idefics3), as a Checkpoint at 32 px."""
    from trainer.config import ModelConfig
    from trainer.models import Checkpoint, build_adapter
    from trainer.models.vlm.tiny import build_tiny_vlm

    base = build_tiny_vlm("idefics3", tmp_path_factory.mktemp("explain_vlm") / "idefics3")
    torch.manual_seed(0)
    adapter = build_adapter(ModelConfig(family="vlm", name=str(base), mode="lora", label="tiny-lora"), 2)
    return Checkpoint.of(adapter, meta={"classes": CLASSES, "input_size": SIZE})

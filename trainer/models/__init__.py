"""Model families. ``build_adapter(model_config)`` returns the family's ``ModelAdapter``.

Each family registers a factory in ``FAMILIES`` (cnn: ``trainer/models/cnn.py``; vlm: ``trainer/models/vlm/``)."""

from __future__ import annotations

import importlib

from trainer.config import ModelConfig
from trainer.models.base import ModelAdapter

# family -> "module:factory"; imported lazily so the CNN path never imports the VLM stack.
FAMILIES: dict[str, str] = {
    "cnn": "trainer.models.cnn:CNNAdapter",
    "vlm": "trainer.models.vlm.adapter:VLMAdapter",
}


def build_adapter(config: ModelConfig, num_classes: int = 2) -> ModelAdapter:
    if config.family not in FAMILIES:
        raise ValueError(f"unknown model family {config.family!r}; available: {', '.join(sorted(FAMILIES)) or 'none'}")
    module, factory = FAMILIES[config.family].split(":")
    return getattr(importlib.import_module(module), factory)(config, num_classes)

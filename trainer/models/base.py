"""The contract between the training engine and a model family (CNN, VLM).

The engine (``trainer/engine``) only talks to a ``ModelAdapter``: it never knows whether it trains a
torchvision CNN or a LoRA-wrapped vision-language model. Each family implements this once."""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.config import ModelConfig
from trainer.rundir import (
    ADAPTER_FILE,
)  # "family" in it picks the class that ``load``s (trainer.models.load_checkpoint)


@contextmanager
def first_input(module: nn.Module):
    """Within the block, the first input ``module`` receives in this thread is appended to the yielded list: how
    ``logits_and_features`` (and the app's explanation passes) read the penultimate features of the very pass
    that makes the prediction. Bound to the calling thread, so concurrent passes through the same cached module
    (another request, a Grad-CAM) are not mixed in; removed on exit."""
    box: list[torch.Tensor] = []
    me = threading.get_ident()

    def tap(_module, args):
        if threading.get_ident() == me and not box:
            box.append(args[0])

    handle = module.register_forward_pre_hook(tap)
    try:
        yield box
    finally:
        handle.remove()


def write_adapter_meta(directory: Path, meta: dict) -> None:
    (directory / ADAPTER_FILE).write_text(json.dumps(meta, indent=1))


class ModelAdapter(ABC):
    """One trainable / evaluable classifier.

    - ``module``: the ``nn.Module`` handed to ``accelerate.prepare`` (holds every parameter).
    - ``transform(train, input_size)``: PIL RGB image -> one sample (a tensor for CNNs; the PIL image for VLMs).
    - ``collate(samples, targets)``: list of samples + target list -> a batch (dict of tensors) on CPU.
    - ``loss(batch)``: scalar training loss (cross-entropy for CNNs, causal-LM loss on answer tokens for VLMs).
    - ``predict_proba(batch)``: (N, num_classes) probabilities that sum to 1.
    - ``logits_and_features(batch)``: (N, num_classes) logits whose softmax is ``predict_proba``'s answer, and
      (N, D) features from the same forward pass (the OOD check's input, ``trainer.trust``).
    """

    family: str = "?"
    # Set by the engine to the accelerate-prepared module (DDP-wrapped on several GPUs). ``loss`` and
    # ``predict_proba`` should call ``self.forward_module(...)`` so gradients sync across processes.
    prepared_module: nn.Module | None = None

    def __init__(self, config: ModelConfig, num_classes: int = 2):
        self.config = config
        self.num_classes = num_classes

    @property
    def forward_module(self) -> nn.Module:
        """The module to run forward passes through: the prepared (wrapped) one during training, else ``module``."""
        return self.prepared_module if self.prepared_module is not None else self.module

    @property
    @abstractmethod
    def module(self) -> nn.Module: ...

    @abstractmethod
    def transform(
        self,
        train: bool,
        input_size: int,
        stain: str | None = None,
        color_jitter: float = 0.1,
        hed_jitter: float = 0.0,
    ) -> Callable[[Any], Any]: ...

    @abstractmethod
    def collate(self, samples: Sequence[Any], targets: Sequence[int]) -> dict[str, Any]: ...

    @abstractmethod
    def loss(self, batch: dict[str, Any]) -> torch.Tensor: ...

    @abstractmethod
    def predict_proba(self, batch: dict[str, Any]) -> torch.Tensor: ...

    @abstractmethod
    def logits_and_features(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass: the class logits (float32) and the penultimate features (float32) behind them."""

    @abstractmethod
    def save(self, directory: str | Path) -> Path:
        """Write the trainable state (safetensors / peft adapter) + what ``load`` needs; return the folder."""

    @classmethod
    @abstractmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> ModelAdapter:
        """Rebuild from ``save``'s folder without pickle (safetensors / ``weights_only``)."""

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters."""
        params = list(self.module.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)

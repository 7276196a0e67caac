"""An exponential moving average of the weights (Polyak averaging, as timm's ``ModelEmaV3``), ``train.ema_decay``.

On small data the weights of one epoch are a noisy point: on IDC's ~15 training patients the validation AUC
jumped by several points from epoch to epoch (results/idc/README.md). Validating, keeping and exporting the
average of the recent steps' weights smooths that out without an ensemble's cost at prediction time.

Written here rather than ``torch.optim.swa_utils.AveragedModel``: that deep-copies the whole module (a frozen
multi-GB VLM base with it); this keeps a shadow of only what trains (``trainable_tensors``: parameters that require
grad, and the buffers, so BatchNorm statistics are averaged too), and swaps it in place for validation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from trainer.engine.checkpoint import cpu_copies, trainable_tensors

UPDATES_KEY = "__ema_updates__"  # the update count, stored beside the shadow tensors in last/ema.safetensors


class WeightEMA:
    """``shadow = d * shadow + (1 - d) * weights`` after every optimiser step, with timm's warm-up
    ``d = min(decay, (1 + t) / (10 + t))`` so the first steps' average is not dominated by the initial weights.
    Integer buffers (BatchNorm's batch counter) are copied, not averaged."""

    def __init__(self, module: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema_decay must be in (0, 1), not {decay}")
        self.decay, self.updates = decay, 0
        self.shadow = {k: v.detach().clone() for k, v in trainable_tensors(module).items()}

    def current_decay(self) -> float:
        t = self.updates
        return min(self.decay, (1.0 + t) / (10.0 + t))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        d = self.current_decay()
        for k, v in trainable_tensors(module).items():
            s = self.shadow[k]
            if s.is_floating_point():
                s.lerp_(v.detach().to(s.dtype), 1.0 - d)
            else:
                s.copy_(v)
        self.updates += 1

    @contextmanager
    def applied(self, module: nn.Module) -> Iterator[None]:
        """The module holds the averaged weights inside the block and its own ones again after it."""
        own = trainable_tensors(module)
        saved = {k: v.detach().clone() for k, v in own.items()}
        with torch.no_grad():
            for k, v in own.items():
                v.copy_(self.shadow[k])
        try:
            yield
        finally:
            with torch.no_grad():
                for k, v in own.items():
                    v.copy_(saved[k])

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = cpu_copies(self.shadow)
        out[UPDATES_KEY] = torch.tensor([self.updates], dtype=torch.long)
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        state = dict(state)
        updates = state.pop(UPDATES_KEY, None)
        if set(state) != set(self.shadow):
            raise ValueError("EMA state does not fit the model (different tensors)")
        with torch.no_grad():
            for k, v in state.items():
                self.shadow[k].copy_(v.to(self.shadow[k].device, self.shadow[k].dtype))
        self.updates = int(updates.item()) if updates is not None else 0

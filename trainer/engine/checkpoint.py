"""Resume state in ``<fold>/last/``: trainable weights + buffers as safetensors, optimiser and scheduler
state through ``torch.save`` read back with ``weights_only=True`` (tensors and plain values only, no pickled
code), loop counters as JSON.

Not ``accelerator.save_state``: it writes the whole model (the frozen multi-GB VLM base included) and
restores RNG state with full unpickling."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
STATE_FILE = "trainer_state.json"


def trainable_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """What changes during training, live: parameters that require grad, and every buffer (BatchNorm statistics)."""
    out = {n: p for n, p in module.named_parameters() if p.requires_grad}
    out.update(dict(module.named_buffers()))
    return out


def cpu_copies(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies, as ``save_file`` wants them."""
    # Clone: safetensors refuses tensors that share memory (tied weights); copies load back the same.
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def trainable_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``trainable_tensors``."""
    return cpu_copies(trainable_tensors(module))


def load_trainable_state(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = dict(module.named_parameters())
    own.update(dict(module.named_buffers()))
    unknown = sorted(set(state) - set(own))
    if unknown:
        raise ValueError(f"checkpoint does not fit the model: unknown tensors {', '.join(unknown[:5])}")
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v.to(own[k].device, own[k].dtype))


def save_resume_state(directory: str | Path, module: nn.Module, optimizer, scheduler, counters: dict) -> Path:
    """Write to a temporary folder and swap it in, so a crash while saving leaves the previous state intact."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(trainable_state(module), str(tmp / MODEL_FILE))
    torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
    if scheduler is not None:
        torch.save(scheduler.state_dict(), tmp / SCHEDULER_FILE)
    (tmp / STATE_FILE).write_text(json.dumps(counters, indent=1))
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def read_counters(directory: str | Path) -> dict | None:
    try:
        return json.loads((Path(directory) / STATE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None


def load_resume_state(directory: str | Path, module: nn.Module, optimizer, scheduler) -> dict:
    directory = Path(directory)
    counters = read_counters(directory)
    if counters is None:
        raise FileNotFoundError(f"no resume state in {directory}")
    load_trainable_state(module, load_file(str(directory / MODEL_FILE)))
    optimizer.load_state_dict(torch.load(directory / OPTIMIZER_FILE, map_location="cpu", weights_only=True))
    if scheduler is not None and (directory / SCHEDULER_FILE).exists():
        scheduler.load_state_dict(torch.load(directory / SCHEDULER_FILE, map_location="cpu", weights_only=True))
    return counters

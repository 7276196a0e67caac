"""Training engine, generic over ``trainer.models.base.ModelAdapter``: the loop (``fit``, ``loop.py``), its
loaders (``loader.py``), prediction over a loader (``predict.py``), resume checkpoints and the run folder's live
files (events, status, stop requests). Callers import from here, not from the modules."""

from trainer.engine.events import EventLog, RunStatus, StopControl, read_events, read_status
from trainer.engine.loader import EpochSampler, class_balanced_weights, make_loader
from trainer.engine.loop import FitResult, build_optimizer, fit, make_accelerator, resolve_mixed_precision
from trainer.engine.predict import nll, predict_loader, predict_outputs, to_device

__all__ = [
    "EventLog",
    "RunStatus",
    "StopControl",
    "read_events",
    "read_status",
    "EpochSampler",
    "class_balanced_weights",
    "make_loader",
    "FitResult",
    "build_optimizer",
    "fit",
    "make_accelerator",
    "resolve_mixed_precision",
    "nll",
    "predict_loader",
    "predict_outputs",
    "to_device",
]

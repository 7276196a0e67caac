"""Training engine, generic over ``trainer.models.base.ModelAdapter``: the loop (``fit``), prediction,
resume checkpoints and the run folder's live files (events, status, stop requests)."""

from trainer.engine.events import EventLog, RunStatus, StopControl, read_events, read_status
from trainer.engine.loop import FitResult, fit, make_accelerator, make_loader, predict_loader

__all__ = [
    "EventLog",
    "RunStatus",
    "StopControl",
    "read_events",
    "read_status",
    "FitResult",
    "fit",
    "make_accelerator",
    "make_loader",
    "predict_loader",
]

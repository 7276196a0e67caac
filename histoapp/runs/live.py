"""What a live (or finished) run looks like from its ``metrics.jsonl``: curve tables for the plots and
fold / epoch progress with an ETA. Only reads the trainer's event log (``trainer.rundir.RunDir.events``)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from trainer.rundir import RunDir, current_events

STEP_COLUMNS = [
    "series",
    "model",
    "magnification",
    "fold",
    "epoch",
    "step",
    "loss",
    "lr",
    "images_per_s",
    "mem_mb",
    "time",
]
EPOCH_COLUMNS = [
    "series",
    "model",
    "magnification",
    "fold",
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_auc",
    "best",
]


def _series(e: dict) -> str:
    return f"{e.get('model')} {e.get('magnification')} fold {e.get('fold')}"


def curves(run_dir: str | Path, events: list[dict] | None = None) -> dict[str, pd.DataFrame]:
    """``{"steps": loss / lr / images/s / memory per logged step, "epochs": train and validation per epoch}``,
    one ``series`` per (model, magnification, fold), each step and epoch once: the latest attempt's where a run
    was resumed (``current_events``: a killed attempt's steps past its checkpoint were trained again)."""
    events = current_events(RunDir(run_dir).events() if events is None else events)
    steps = [
        {"series": _series(e), **{k: e.get(k) for k in STEP_COLUMNS[1:]}} for e in events if e.get("event") == "step"
    ]
    epochs = [
        {"series": _series(e), **{k: e.get(k) for k in EPOCH_COLUMNS[1:]}} for e in events if e.get("event") == "epoch"
    ]
    return {"steps": pd.DataFrame(steps, columns=STEP_COLUMNS), "epochs": pd.DataFrame(epochs, columns=EPOCH_COLUMNS)}


def _steps_per_fold(n_train: int, train: dict, processes: int = 1) -> int:
    """Optimiser steps of one fold, as the engine counts them (ragged last batch dropped, accumulation)."""
    batch, accum = max(1, int(train.get("batch_size") or 1)), max(1, int(train.get("grad_accum") or 1))
    per_proc = -(-n_train // processes)
    batches = per_proc // batch if per_proc > batch else 1
    total = int(train.get("epochs") or 1) * max(1, batches // accum)
    return min(total, int(train["max_steps"])) if train.get("max_steps") else total


def progress(config: dict, events: list[dict], *, now: float | None = None) -> dict:
    """Where the run is: folds done of the grid, the current fold's epoch and step, the fraction done and an
    ETA from the pace of the current launch (folds finished by an earlier launch do not count as pace)."""
    now = time.time() if now is None else now
    data, train = config.get("data", {}), config.get("train", {})
    per = len(data.get("folds_to_run") or []) or int(data.get("folds") or 0)
    total_folds = per * len(data.get("magnifications") or []) * len(config.get("models") or []) or None
    done_keys = {_series(e) for e in events if e.get("event") == "fold_end"}
    starts = [i for i, e in enumerate(events) if e.get("event") == "run_start"]
    last_start = starts[-1] if starts else 0
    done_before = {_series(e) for e in events[:last_start] if e.get("event") == "fold_end"}

    current, fold_start = None, None
    for e in reversed(events[last_start:]):
        if e.get("event") == "fold_start":
            fold_start = e
            current = _series(e)
            break
    if current in done_keys:
        current = None
    step = epoch = None
    last_step = None
    for e in reversed(events):
        if e.get("event") == "step" and _series(e) == current:
            last_step = e
            break
    fold_fraction = 0.0
    steps_total = None
    if current and fold_start:
        steps_total = _steps_per_fold(int(fold_start.get("n_train") or 0), train)
        if last_step:
            step, epoch = last_step.get("step"), last_step.get("epoch")
            fold_fraction = min(1.0, (step or 0) / max(1, steps_total))
    fraction = None
    if total_folds:
        fraction = min(1.0, (len(done_keys) + fold_fraction) / total_folds)
    eta = None
    start_time = events[last_start].get("time") if events and starts else None
    if fraction is not None and start_time and total_folds:
        f0 = len(done_before) / total_folds
        gained = fraction - f0
        if gained > 1e-6 and fraction < 1.0:
            eta = (now - start_time) * (1.0 - fraction) / gained
    recent = last_step or next((e for e in reversed(events) if e.get("event") == "step"), None)
    return {
        "folds_done": len(done_keys),
        "folds_total": total_folds,
        "current": current,
        "epoch": epoch,
        "epochs": train.get("epochs"),
        "step": step,
        "steps_total": steps_total,
        "fraction": fraction,
        "eta_s": eta,
        "images_per_s": (recent or {}).get("images_per_s"),
        "mem_mb": (recent or {}).get("mem_mb"),
        "elapsed_s": (now - start_time) if start_time else None,
    }


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")

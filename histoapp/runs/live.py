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
    if total_folds and fold_start and fraction is not None and fraction < 1.0:
        # Folds not started yet take as many steps as the last one started (same data, nearly the same split).
        per_fold = _steps_per_fold(int(fold_start.get("n_train") or 0), train)
        folds_left = max(0, total_folds - len(done_keys))
        in_current = max(0, (steps_total or 0) - (step or 0)) if current else 0
        remaining = in_current + (folds_left - (1 if current else 0)) * per_fold
        eta = eta_range(events[last_start:], remaining, folds_left, now=now)
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
        "eta_s": eta,  # (low, high) seconds, or None while too few steps are measured
        "images_per_s": (recent or {}).get("images_per_s"),
        "mem_mb": (recent or {}).get("mem_mb"),
        "elapsed_s": (now - start_time) if start_time else None,
    }


MIN_INTERVALS = 3  # step events of this launch needed before an ETA is given
SURE = 0.15  # a range narrower than this share of its top is shown as one figure


def eta_range(events: list[dict], steps_left: int, folds_left: int, *, now: float) -> tuple[float, float] | None:
    """(low, high) seconds left, from measured step times of this launch (``events`` from its ``run_start``).

    Pace: seconds per optimiser step between consecutive ``step`` events of a fold, pauses for validation
    included (they are part of a fold's time). The range spans the launch's mean pace and its recent pace (the
    last third of the intervals: a machine that got busier shows at once), plus, per fold still to finish, the
    time a finished fold of this launch spent outside its step intervals (test set, calibration, the next fold's
    start); before any fold has finished that is unknown and the top of the range gets a quarter more. Counted
    from the last step event, so the ETA runs down while the step counter waits, and never grows by itself."""
    intervals, last, fold_steps = [], {}, {}
    for e in events:
        key = _series(e)
        if e.get("event") == "fold_start":
            last.pop(key, None)
        elif e.get("event") == "step" and e.get("step") is not None:
            if key in last and e["step"] > last[key]["step"]:
                intervals.append((e["time"] - last[key]["time"], e["step"] - last[key]["step"]))
            fold_steps.setdefault(key, [e, e])[1] = e
            last[key] = e
    if len(intervals) < MIN_INTERVALS:
        return None
    mean = sum(t for t, _ in intervals) / sum(n for _, n in intervals)
    tail = intervals[-max(1, len(intervals) // 3) :]
    recent = sum(t for t, _ in tail) / sum(n for _, n in tail)
    # Per finished fold: its wall time beyond its step intervals.
    starts = {_series(e): e["time"] for e in events if e.get("event") == "fold_start"}
    extra = [
        max(0.0, e["time"] - starts[k] - (fold_steps[k][1]["time"] - fold_steps[k][0]["time"]))
        for e in events
        if e.get("event") == "fold_end" and (k := _series(e)) in starts and k in fold_steps
    ]
    since = now - max(e["time"] for e in events if e.get("event") == "step")
    low = steps_left * min(mean, recent) + folds_left * (sum(extra) / len(extra) if extra else 0.0)
    high = steps_left * max(mean, recent) * (1.0 if extra else 1.25) + folds_left * (max(extra) if extra else 0.0)
    return max(0.0, low - since), max(0.0, high - since)


def format_eta(eta: tuple[float, float] | None) -> str:
    """One figure when the range is narrow (``SURE``), else ``low – high``; a dash while measuring."""
    if eta is None:
        return "— (measuring step times)"
    low, high = eta
    if high - low <= SURE * high:
        return f"about {format_duration((low + high) / 2)}"
    return f"{format_duration(low)} – {format_duration(high)}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")

"""Tiny runs for tests: generated BreakHis-like data, 32 px inputs, resnet18 from scratch, 2 folds, 40X."""

from __future__ import annotations

import time
from pathlib import Path

from histoapp.settings import Settings
from trainer.config import ExperimentConfig


def make_data(root: Path) -> Path:
    from trainer.data.synthetic import generate

    return generate(root, patients_per_subtype=2, images_per_magnification=4, size=40, seed=0)


def make_settings(tmp: Path, data_root: Path) -> Settings:
    return Settings(runs_dir=tmp / "runs", data_dir=tmp / "data", allowed_roots=[tmp / "data", Path(data_root).parent])


def tiny_config(
    settings: Settings,
    name: str,
    data_root: Path,
    *,
    epochs: int = 2,
    batch_size: int = 4,
    max_steps: int | None = None,
) -> ExperimentConfig:
    return ExperimentConfig.from_dict(
        {
            "name": name,
            "output_dir": str(settings.runs_dir),
            "data": {
                "source": "breakhis",
                "root": str(data_root),
                "magnifications": ["40X"],
                "folds": 2,
                "input_size": 32,
                "cache": "memory",
                "num_workers": 0,
            },
            "models": [{"family": "cnn", "name": "resnet18", "pretrained": False}],
            "train": {
                "epochs": epochs,
                "batch_size": batch_size,
                "lr": 0.001,
                "early_stopping_patience": 0,
                "mixed_precision": "no",
                "max_steps": max_steps,
                "log_every": 1,
            },
        }
    )


def make_finished_run(settings: Settings, name: str, data_root: Path) -> Path:
    """A finished 2-model x 40X x 2-fold run made in-process (no subprocess): resnet18 full fine-tuning and
    linear probing, 2 optimiser steps per fold."""
    from trainer.cv import run_experiment

    data = tiny_config(settings, name, data_root, epochs=1, max_steps=2).to_dict()
    data["models"] = [
        {"family": "cnn", "name": "resnet18", "pretrained": False},
        {"family": "cnn", "name": "resnet18", "pretrained": False, "mode": "linear_probe"},
    ]
    cfg = ExperimentConfig.from_dict(data)
    result = run_experiment(cfg, progress=False, cpu=True)
    assert result["state"] == "finished", result
    return cfg.run_dir


def wait_for(predicate, timeout: float = 120.0, every: float = 0.25, what: str = "condition"):
    import time

    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def make_running_run(settings: Settings, name: str, data_root: Path, *, steps: int = 12, step_s: float = 2.0):
    """A run the app takes for running, made without training: its config, a live stand-in process (``sleep``,
    in its own process group as the launcher starts runs) in ``launch.json`` and ``status.json``, and step events
    of its first fold at ``step_s`` seconds per step, the last one now. Returns the process (the caller ends it)."""
    import json
    import subprocess
    import sys
    from datetime import datetime, timezone

    from trainer.rundir import RunDir, write_json_atomic

    cfg = tiny_config(settings, name, data_root, epochs=2, batch_size=4)
    run = RunDir(settings.runs_dir / name)
    run.path.mkdir(parents=True)
    cfg.to_yaml(run.config_file)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    now = time.time()
    write_json_atomic(
        run.launch_file,
        {"state": "launched", "pid": proc.pid, "pgid": proc.pid, "launched": now - 60, "history": []},
    )
    started = datetime.fromtimestamp(now - 55, timezone.utc).isoformat()
    write_json_atomic(run.status_file, {"state": "running", "pid": proc.pid, "started": started, "updated": started})
    ctx = {"model": "resnet18", "magnification": "40X", "fold": 0}
    events = [
        {"event": "run_start", "time": now - 55},
        {"event": "fold_start", "time": now - 50, **ctx, "n_train": 400},
    ]
    events += [
        {"event": "step", "time": now - (steps - s) * step_s, **ctx, "epoch": 0, "step": s, "loss": 0.7}
        for s in range(1, steps + 1)
    ]
    run.events_file.write_text("".join(json.dumps(e) + "\n" for e in events))
    return proc

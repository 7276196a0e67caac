"""Run processes: start ``python -m trainer cv`` detached from the app, find out whether it still lives, signal
its process group. The run folder's ``launch.json`` records what was started, so a restarted app re-attaches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from histoapp.settings import PROJECT_ROOT
from trainer.rundir import RunDir, pid_alive, read_json, write_json_atomic

__all__ = ["pid_alive", "read_launch", "write_launch", "spawn", "trainer_command", "signal_group", "log_tail"]


def read_launch(run_dir: Path) -> dict | None:
    return read_json(RunDir(run_dir).launch_file)


def write_launch(run_dir: Path, data: dict) -> None:
    write_json_atomic(RunDir(run_dir).launch_file, data)


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken CUDA install must not break the Train tab
        return 0


def trainer_command(config_path: Path, *, gpus: int = 0, threads: int | None = None) -> list[str]:
    """The CLI the run executes: one process, or ``accelerate launch`` over several GPUs (data parallel)."""
    args = ["-m", "trainer", "cv", "--config", str(config_path), "--no-progress"]
    if threads and gpus == 0:
        args += ["--threads", str(threads)]
    if gpus > 1:
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(gpus), *args]
    return [sys.executable, *args]


def spawn(command: list[str], run_dir: Path, env: dict | None = None) -> subprocess.Popen:
    """Start the run in its own session (closing the browser or restarting the app does not end it), with
    stdout + stderr appended to ``<run>/log.txt``."""
    run_dir = Path(run_dir)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), full_env.get("PYTHONPATH", "")) if p)
    with open(RunDir(run_dir).log_file, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} $ {' '.join(command)}\n".encode())
        log.flush()
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
            close_fds=True,
        )


def signal_group(pgid, sig: int) -> bool:
    """Signal the run's whole process group (``accelerate launch`` and its workers alike)."""
    try:
        os.killpg(int(pgid), sig)
        return True
    except (ProcessLookupError, PermissionError, ValueError, TypeError):
        return False


SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


def log_tail(run_dir: Path, lines: int = 40, max_bytes: int = 64_000) -> str:
    path = RunDir(run_dir).log_file
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    # Progress bars write carriage returns: keep the last state of each line.
    out = [ln.rsplit("\r", 1)[-1] for ln in text.splitlines()]
    return "\n".join(out[-lines:])

"""``RunManager``: the Train tab's runs as real processes. Launch (validated, queued: one run at a time by
default), stop (``STOP`` file, then SIGTERM, then SIGKILL), resume (the same folder again: the trainer skips
finished folds and resumes the interrupted one), delete, and a history rebuilt from the run folders alone, so
a restarted app re-attaches to running and finished runs."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from histoapp.runs import process
from histoapp.runs.live import progress
from histoapp.runs.validate import check_config
from histoapp.settings import Settings
from trainer.config import ExperimentConfig
from trainer.rundir import RunDir, read_events, runs_in

ACTIVE = ("starting", "running", "stopping")


class LaunchRefused(ValueError):
    """A launch / resume / delete that cannot be done; the message says why (``reasons``: each on its own)."""

    def __init__(self, *reasons: str):
        self.reasons = list(reasons)
        super().__init__("; ".join(reasons))


@dataclass
class RunInfo:
    name: str
    path: Path
    state: str  # queued | starting | running | stopping | stopped | failed | finished | unknown
    message: str = ""
    pid: int | None = None
    launched: float | None = None
    updated: float | None = None
    config: dict = field(default_factory=dict)
    by: str | None = None  # who launched it from the app (None: the CLI)
    job: str | None = None  # the scheduler's job id (SLURM backend)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def _ts(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


class RunManager:
    BACKEND = "local"  # HISTOAPP_RUN_BACKEND (histoapp.runs.backend.open_runs)
    # An earlier attempt, as a resume keeps it in launch.json's history (the first key marks that there was one).
    ATTEMPT_KEYS = ("pid", "launched", "ended_state")

    def __init__(
        self,
        settings: Settings,
        *,
        max_parallel: int | None = None,
        stop_timeout_s: float | None = None,
        kill_timeout_s: float = 15.0,
        threads: int | None = None,
        poll_s: float = 2.0,
        background: bool = True,
    ):
        self.settings = settings
        self.runs_dir = Path(settings.runs_dir)
        self.max_parallel = max_parallel or settings.max_parallel_runs
        self.stop_timeout_s = stop_timeout_s if stop_timeout_s is not None else settings.stop_timeout_s
        self.kill_timeout_s = kill_timeout_s
        self.threads = threads if threads is not None else settings.run_threads
        self.poll_s = poll_s
        self._children: dict[str, object] = {}  # Popen handles of runs this app started (reaped on refresh)
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._background = background
        self._events: dict[Path, tuple] = {}
        self._ensure_thread()  # queued runs left by a previous app start as soon as a slot is free

    # --- launching -----------------------------------------------------------------------------------
    def resources(self, values: dict) -> dict | None:
        """What a scheduler is asked for (the form's ``job.*`` fields); a local run takes this machine as it is."""
        return None

    def check(self, cfg: ExperimentConfig, *, data_made_at_launch: bool = False) -> tuple[list[str], list[str]]:
        """(errors, warnings); ``data_made_at_launch``: the data folder is written just before the launch."""
        errors, warnings = check_config(cfg, self.settings, data_made_at_launch=data_made_at_launch)
        if Path(cfg.output_dir).resolve() != self.runs_dir.resolve():
            errors.append(f"output_dir must be the app's runs folder {self.runs_dir} (got {cfg.output_dir})")
        elif cfg.name and (self.runs_dir / cfg.name).exists():
            errors.append(f"a run named {cfg.name!r} exists already: choose another name, or resume that run")
        return errors, warnings

    def launch(self, cfg: ExperimentConfig, *, user: str | None = None, resources: dict | None = None) -> RunInfo:
        """Validate, write ``<runs>/<name>/config.yaml``, queue; the run starts now if a slot is free. ``user``:
        who submits it (shown with the run); ``resources``: what a scheduler is asked for (SLURM backend)."""
        errors, _ = self.check(cfg)
        if errors:
            raise LaunchRefused(*errors)
        run_dir = self.runs_dir / cfg.name
        with self._lock:
            run_dir.mkdir(parents=True)
            cfg.to_yaml(RunDir(run_dir).config_file)
            process.write_launch(
                run_dir,
                {"state": "queued", "queued": time.time(), "history": [], "submitted_by": user}
                | ({"resources": resources} if resources else {}),
            )
        self.refresh()
        self._ensure_thread()
        return self.info(cfg.name)

    def resume(self, name: str) -> RunInfo:
        """Queue a stopped or failed run again in its own folder (same config)."""
        run_dir = self._dir(name)
        with self._lock:
            info = self.info(name)
            if info.state in ACTIVE or info.state == "queued":
                raise LaunchRefused(f"{name} is {info.state}; nothing to resume")
            if info.state == "finished":
                raise LaunchRefused(f"{name} has finished every fold; nothing to resume")
            if not RunDir(run_dir).config_file.is_file():
                raise LaunchRefused(f"{name} has no config.yaml; it cannot be resumed")
            launch = process.read_launch(run_dir) or {"history": []}
            history = launch.get("history", []) + (
                [{k: launch.get(k) for k in self.ATTEMPT_KEYS}] if launch.get(self.ATTEMPT_KEYS[0]) else []
            )
            RunDir(run_dir).stop_file.unlink(missing_ok=True)
            kept = {k: launch[k] for k in ("submitted_by", "resources") if k in launch}
            process.write_launch(run_dir, {"state": "queued", "queued": time.time(), "history": history, **kept})
        self.refresh()
        self._ensure_thread()
        return self.info(name)

    def _start(self, run_dir: Path) -> None:
        gpus = process.gpu_count()
        cmd = process.trainer_command(RunDir(run_dir).config_file, gpus=gpus, threads=self.threads)
        proc = process.spawn(cmd, run_dir)
        self._children[run_dir.name] = proc
        launch = process.read_launch(run_dir) or {}
        process.write_launch(
            run_dir,
            {
                **launch,
                "state": "launched",
                "pid": proc.pid,
                "pgid": proc.pid,
                "command": cmd,
                "gpus": gpus,
                "launched": time.time(),
                "stop_requested": None,
                "forced": None,
            },
        )

    # --- stopping / deleting ---------------------------------------------------------------------------
    def stop(self, name: str, *, force: bool = False) -> RunInfo:
        """Graceful: the ``STOP`` file (the engine saves a checkpoint and ends at the next step); SIGTERM and
        then SIGKILL follow if it has not ended in time. ``force``: SIGKILL now. A queued run is cancelled."""
        run_dir = self._dir(name)
        with self._lock:
            launch = process.read_launch(run_dir)
            info = self.info(name)
            if info.state == "queued":
                process.write_launch(run_dir, {**launch, "state": "cancelled"})
                return self.info(name)
            if info.state not in ACTIVE:
                raise LaunchRefused(f"{name} is not running ({info.state})")
            if launch is None:  # started outside the app (CLI): only the STOP file is ours to use
                RunDir(run_dir).stop_file.touch()
                return self.info(name)
            RunDir(run_dir).stop_file.touch()
            launch = {**launch, "stop_requested": launch.get("stop_requested") or time.time()}
            if force:
                process.signal_group(launch["pgid"], process.SIGNALS["SIGKILL"])
                launch["forced"] = "SIGKILL"
            elif info.state == "starting":
                # Still importing: the runner would clear the STOP file when it starts; nothing to save yet.
                process.signal_group(launch["pgid"], process.SIGNALS["SIGTERM"])
            process.write_launch(run_dir, launch)
        self.refresh()
        return self.info(name)

    def delete(self, name: str) -> None:
        run_dir = self._dir(name)
        with self._lock:
            info = self.info(name)
            if info.active:
                raise LaunchRefused(f"{name} is {info.state}: stop it before deleting it")
            self._children.pop(name, None)
            shutil.rmtree(run_dir)

    # --- watching ---------------------------------------------------------------------------------------
    def _alive(self, name: str, launch: dict | None) -> bool:
        proc = self._children.get(name)
        if proc is not None and launch and proc.pid == launch.get("pid"):
            return proc.poll() is None  # poll() also reaps it, so a dead child never lingers as a zombie
        return bool(launch and launch.get("pid")) and process.pid_alive(launch["pid"])

    def info(self, name: str) -> RunInfo:
        run_dir = self._dir(name)
        run = RunDir(run_dir)
        launch = process.read_launch(run_dir)
        status = run.status()
        config = run.config()
        info = RunInfo(name, run_dir, "unknown", config=config)
        if status:
            info.message, info.updated = status.get("message") or "", _ts(status.get("updated"))
        if launch is None:  # a run made by the CLI: its status file is all there is
            if status:
                info.state, info.pid, info.launched = status["state"], status.get("pid"), _ts(status.get("started"))
            return info
        info.launched = launch.get("launched") or launch.get("queued")
        info.by = launch.get("submitted_by")
        if launch["state"] in ("queued", "cancelled"):
            info.state = "queued" if launch["state"] == "queued" else "stopped"
            info.message = "waiting for a free slot" if launch["state"] == "queued" else "cancelled before it started"
            return info
        info.pid = launch.get("pid")
        # status.json written by this launch (not left over from an earlier one)?
        fresh = status is not None and (_ts(status.get("started")) or 0) >= (launch.get("launched") or 0) - 2
        stop_asked = launch.get("stop_requested")
        if self._alive(name, launch):
            if stop_asked:
                info.state, info.message = "stopping", f"stop requested {int(time.time() - stop_asked)} s ago"
            elif fresh:  # running, or writing its last files after a final status
                info.state = "running"
            else:
                info.state, info.message = "starting", "starting the trainer process"
            return info
        if fresh and status["state"] != "failed":
            info.state = status["state"]
        elif stop_asked:
            info.state = "stopped"
            info.message = (
                f"forced stop ({launch['forced']})" if launch.get("forced") else "stopped before training started"
            ) + "; resume continues from the last checkpoint"
        else:
            info.state = "failed"
            why = status.get("message") if fresh else "the process ended before writing its status"
            tail = process.log_tail(run_dir, 15)
            info.message = f"{why}\n--- log tail ---\n{tail}" if tail else why
        return info

    def list_runs(self) -> list[RunInfo]:
        names = [r.name for r in runs_in(self.runs_dir) if r.is_run()]
        infos = [self.info(n) for n in names]
        return sorted(infos, key=lambda i: -(i.launched or i.updated or 0))

    def refresh(self) -> None:
        """Reap ended children, escalate overdue stops, start queued runs while slots are free."""
        with self._lock:
            infos = self.list_runs()
            now = time.time()
            for info in infos:
                launch = process.read_launch(info.path)
                if info.state == "stopping" and launch:
                    self._escalate(info, launch, now)
                if (
                    not info.active
                    and launch
                    and launch.get("state") == "launched"
                    and launch.get("ended_state") != info.state
                ):
                    process.write_launch(info.path, {**launch, "ended_state": info.state, "ended": now})
                    self._children.pop(info.name, None)
            busy = sum(1 for i in infos if i.active)
            queued = sorted((i for i in infos if i.state == "queued"), key=lambda i: i.launched or 0)
            for info in queued[: max(0, self.max_parallel - busy)]:
                self._start(info.path)

    def _escalate(self, info: RunInfo, launch: dict, now: float) -> None:
        run = RunDir(info.path)
        status = run.status()
        fresh = status is not None and (_ts(status.get("started")) or 0) >= (launch.get("launched") or 0) - 2
        if fresh and not run.stop_file.exists() and not launch.get("forced"):
            run.stop_file.touch()  # the runner clears a STOP found at its start; ask again
        waited = now - launch["stop_requested"]
        if waited > self.stop_timeout_s + self.kill_timeout_s and launch.get("forced") != "SIGKILL":
            process.signal_group(launch["pgid"], process.SIGNALS["SIGKILL"])
            process.write_launch(info.path, {**launch, "forced": "SIGKILL"})
        elif waited > self.stop_timeout_s and not launch.get("forced"):
            process.signal_group(launch["pgid"], process.SIGNALS["SIGTERM"])
            process.write_launch(info.path, {**launch, "forced": "SIGTERM"})

    def events(self, name: str) -> list[dict]:
        """The run's events; re-read only when ``metrics.jsonl`` changed (the live view polls every run)."""
        path = RunDir(self._dir(name)).events_file
        try:
            st = path.stat()
        except FileNotFoundError:
            return []
        key = (st.st_mtime_ns, st.st_size)
        cached = self._events.get(path)
        if cached is None or cached[0] != key:
            cached = (key, read_events(path))
            self._events[path] = cached
        return cached[1]

    def progress(self, name: str) -> dict:
        return progress(RunDir(self._dir(name)).config(), self.events(name))

    def log_tail(self, name: str, lines: int = 40) -> str:
        return process.log_tail(self._dir(name), lines)

    def _dir(self, name: str) -> Path:
        path = (self.runs_dir / str(name)).resolve()
        if path.parent != self.runs_dir.resolve() or not path.is_dir():
            raise LaunchRefused(f"no run named {name!r} in {self.runs_dir}")
        return path

    # --- background poll ----------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        """Queued runs start and stops escalate even when no browser is watching."""
        if not self._background or (self._thread and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._loop, name="histoapp-runs", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closed.wait(self.poll_s):
            with contextlib.suppress(Exception):  # a bad run folder must not end the watcher
                self.refresh()

    def close(self) -> None:
        self._closed.set()

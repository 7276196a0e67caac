"""The run folder's live files: ``metrics.jsonl`` events, ``status.json``, and the stop request (``STOP``
file or SIGTERM/SIGINT). A UI follows a run by reading these; see docs/ARCHITECTURE.md."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from trainer.rundir import (
    EVENTS_FILE,
    STATUS_FILE,
    STOP_FILE,
    clean_json,
    now_iso,
    read_events,
    read_status,
    this_host,
    write_json_atomic,
)

# The file names and readers belong to the run folder's layout (trainer.rundir, torch-free); re-exported here
# for the engine's callers.
__all__ = [
    "EVENTS_FILE",
    "STATUS_FILE",
    "STOP_FILE",
    "EventLog",
    "RunStatus",
    "StopControl",
    "read_events",
    "read_status",
    "write_json_atomic",
]


class EventLog:
    """Appends one JSON object per line to ``metrics.jsonl``; ``context`` (model, magnification, fold) is
    added to every event. Only the main process writes (``enabled``)."""

    def __init__(self, path: str | Path | None, enabled: bool = True, **context):
        self.path = Path(path) if path is not None else None
        self.enabled = enabled and self.path is not None
        self.context = context

    def bind(self, **context) -> EventLog:
        return EventLog(self.path, self.enabled, **{**self.context, **context})

    def emit(self, event: str, **fields) -> None:
        if not self.enabled:
            return
        record = clean_json({"event": event, "time": round(time.time(), 3), **self.context, **fields})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:  # one write per line: concurrent readers see whole lines
            fh.write(json.dumps(record) + "\n")


class RunStatus:
    """``status.json``: ``{"state", "pid", "host", "attempt", "started", "updated", "message"}``."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, attempt: int | None = None):
        self.path = Path(run_dir) / STATUS_FILE
        self.enabled = enabled
        self.attempt = attempt
        self.started = now_iso()

    def set(self, state: str, message: str = "", **extra) -> None:
        if self.enabled:
            write_json_atomic(
                self.path,
                {
                    "state": state,
                    "pid": os.getpid(),
                    "host": this_host(),  # the pid means something only there (trainer.rundir.reconcile_status)
                    "attempt": self.attempt,
                    "started": self.started,
                    "updated": now_iso(),
                    "message": message,
                    **extra,
                },
            )


class StopControl:
    """A stop request: the ``STOP`` file in the run folder, or SIGTERM/SIGINT to this process. The engine
    polls ``requested`` every step and ends cleanly (checkpoint saved, state ``stopped``)."""

    def __init__(self, run_dir: str | Path | None = None):
        self.file = Path(run_dir) / STOP_FILE if run_dir is not None else None
        self.signalled: str | None = None
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        return self.signalled is not None or (self.file is not None and self.file.exists())

    @property
    def reason(self) -> str:
        if self.signalled:
            return f"stopped by {self.signalled}"
        return f"stopped by the {STOP_FILE} file"

    def clear_file(self) -> None:
        if self.file is not None:
            self.file.unlink(missing_ok=True)

    def install_signal_handlers(self) -> None:
        """SIGTERM / SIGINT set the flag instead of killing the process (only possible in the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handler)

    def restore_signal_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handler(self, signum, frame) -> None:
        if self.signalled is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user really wants out
        self.signalled = signal.Signals(signum).name

"""The app's side of the model worker (``histoapp.models.worker``): start it, send it model operations
(``call(op, *args)``, as ``histoapp.models.ops.LocalModels``), follow its warm-up for the page, restart it when it
dies, stop it with the app. Imports nothing heavy: ``app.py`` starts the worker before importing Gradio.

- A call waits for its answer; a call sent during the warm-up waits behind the load of its model, not a second one.
- When the worker dies, every call it was running fails at once with a ``WorkerError`` that says so, and a new
  worker starts (warm-up included) for the next calls. After ``max_restarts`` deaths without a warm-up finishing
  in between, it is not restarted: the page and every call say so (no call hangs).
- ``close()`` (also at interpreter exit) stops the worker; the worker also exits by itself when the app's process
  ends in any way (its socket closes), so no worker outlives the app."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path

from histoapp.models.warm import status_line
from trainer.threads import blas_threads_env

ROOT = Path(__file__).resolve().parents[2]  # where ``histoapp`` is importable from


class WorkerError(RuntimeError):
    """The model worker stopped or cannot run the call."""


def _error(value) -> BaseException:
    name, message, pickled = value
    if pickled is not None:
        try:
            return pickle.loads(pickled)
        except Exception:  # an exception class the app cannot rebuild: its name and text
            pass
    return WorkerError(f"{name}: {message}")


class ModelWorker:
    def __init__(self, settings, *, ops: str = "histoapp.models.ops", warm: bool = True, max_restarts: int = 3):
        self.settings, self.ops, self.warm, self.max_restarts = settings, ops, warm, max_restarts
        self._lock = threading.Lock()  # guards the process, its socket and the pending calls
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._pending: dict[int, Future] = {}
        self._ids = itertools.count()
        self._done = threading.Event()  # the current worker's warm-up is over
        self._closed = False
        self._started = 0.0
        self._at_exit = None
        self.state = "idle"  # -> loading -> ready | failed (warm-up failed: models load on first use) | dead
        self.error = ""
        self.models: list[str] = []
        self.seconds: float | None = None  # worker start -> warm-up over
        self.deaths = 0  # in a row, since the last finished warm-up
        self.exit_codes: list[int] = []

    # --- process -----------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    def start(self) -> ModelWorker:
        """Start the worker (once; later calls do nothing while it runs)."""
        with self._lock:
            if self._proc is None and not self._closed and self.state != "dead":
                self._spawn()
        return self

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        env = {
            **blas_threads_env(getattr(self.settings, "torch_threads", 0)),
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        }
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "histoapp.models.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._started = time.perf_counter()
        self.state, self.error, self.models, self.seconds = "loading", "", [], None
        self._done.clear()
        self._conn.send_bytes(pickle.dumps(("init", {"ops": self.ops, "settings": self.settings, "warm": self.warm})))
        threading.Thread(
            target=self._read, args=(self._proc, self._conn), name="histoapp-worker-reader", daemon=True
        ).start()
        if not self._at_exit:
            self._at_exit = atexit.register(self.close)

    def _read(self, proc: subprocess.Popen, conn: Connection) -> None:
        while True:
            try:
                message = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError, TypeError):  # TypeError: close() closed the connection under us
                break
            if message[0] == "state":
                self._on_state(proc, message[1])
            elif message[0] == "result":
                _, call_id, ok, value = message
                with self._lock:
                    future = self._pending.pop(call_id, None)
                if future is not None and ok:
                    future.set_result(value)
                elif future is not None:
                    future.set_exception(_error(value))
        self._died(proc)

    def _on_state(self, proc, state: dict) -> None:
        if proc is not self._proc:
            return
        self.state = state["state"]
        if self.state in ("ready", "failed"):
            self.error, self.models = state.get("error", ""), list(state.get("models", []))
            self.seconds = time.perf_counter() - self._started
            self.deaths = 0
            self._done.set()

    def _died(self, proc: subprocess.Popen) -> None:
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:  # its socket closed but it lives on: it cannot serve calls any more
            proc.kill()
            code = proc.wait()
        with self._lock:
            if proc is not self._proc:  # closed (or already replaced)
                return
            self._proc, self._conn = None, None
            pending, self._pending = list(self._pending.values()), {}
            self.deaths += 1
            self.exit_codes.append(code)
            stopped = f"the model worker stopped (exit code {code})"
            if self._closed:
                reason = "the app is shutting down"
            elif self.deaths > self.max_restarts:
                self.state = "dead"
                self.error = f"{stopped}, {self.deaths} times in a row; it is not restarted (see the server log)"
                self._done.set()
                reason = self.error
            else:
                reason = f"{stopped} while running this; it has been restarted: ask again"
                self._spawn()
        for future in pending:
            future.set_exception(WorkerError(reason))

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker (and with it the calls it was running: they fail)."""
        with self._lock:
            self._closed = True
            proc, conn, self._proc, self._conn = self._proc, self._conn, None, None
            pending, self._pending = list(self._pending.values()), {}
        if conn is not None:
            conn.close()  # the worker reads EOF and exits
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for future in pending:
            future.set_exception(WorkerError("the model worker was shut down"))

    # --- calls ---------------------------------------------------------------------------------------
    def call(self, op: str, *args, timeout: float | None = None):
        """``histoapp.models.ops.OPS[op](registry, *args)`` in the worker; its exception is raised here."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise WorkerError("the model worker was shut down")
            if self.state == "dead":
                raise WorkerError(self.error)
            if self._proc is None:
                self._spawn()
            call_id = next(self._ids)
            self._pending[call_id] = future
            with contextlib.suppress(OSError):  # it died under us: the reader fails the call and restarts it
                self._conn.send_bytes(pickle.dumps(("call", call_id, op, args), protocol=pickle.HIGHEST_PROTOCOL))
        return future.result(timeout)

    # --- warm-up, as ``histoapp.models.warm.Warmup`` ------------------------------------------------------
    @property
    def over(self) -> bool:
        return self.state in ("ready", "failed", "dead")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the warm-up is over (at once if the worker was never started); False on timeout."""
        return True if self.state == "idle" else self._done.wait(timeout)

    def status(self) -> str:
        """One line for the page."""
        if self.state == "dead":
            return f"⚠️ *No predictions: {self.error}.*"
        return status_line(self.state, self.error, self.models, self.seconds)


def start_worker(settings) -> ModelWorker | None:
    """The app's model worker, started; None where models run in the app's process: ``HISTOAPP_MODEL_WORKER=0``,
    or ZeroGPU (``spaces.GPU`` runs the model calls itself, per request)."""
    if not settings.model_worker or _zerogpu():
        return None
    return ModelWorker(settings).start()


def _zerogpu() -> bool:
    from histoapp.models.zerogpu import ZEROGPU

    return ZEROGPU

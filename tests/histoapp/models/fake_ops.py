"""Model operations without models, for the model worker's tests: the worker starts in well under a second (no
torch). ``settings`` is a dict here: ``warm_s`` (how long the warm-up takes), ``warm_error``, ``warm_crash`` (the
worker's exit code, during its warm-up)."""

from __future__ import annotations

import os
import threading
import time


def setup(settings):
    return {"settings": settings, "loaded": threading.Event()}


def warm(state) -> list[str]:
    time.sleep(state["settings"].get("warm_s", 0.0))
    if state["settings"].get("warm_crash"):
        os._exit(state["settings"]["warm_crash"])
    if state["settings"].get("warm_error"):
        raise RuntimeError(state["settings"]["warm_error"])
    state["loaded"].set()
    return ["fake-cnn", "fake-vlm"]


def predict(state, x):
    """Waits for the warm-up's 'load', as ``ModelRegistry.load`` does for a model being loaded."""
    state["loaded"].wait(60)
    return {"x": x, "pid": os.getpid()}


def pid(state) -> int:
    return os.getpid()


def crash(state, code: int = 3):
    os._exit(code)


def fail(state, message: str):
    raise ValueError(message)


def sleep(state, seconds: float) -> float:
    time.sleep(seconds)
    return seconds


class ThreadSettings(dict):
    """Fake settings that also name torch's CPU threads, as ``histoapp.settings.Settings`` does."""

    torch_threads = 1


def blas_threads(state) -> dict:
    """The worker's BLAS / OpenMP thread variables, and (where threadpoolctl is installed) the threads numpy's BLAS
    actually runs."""
    from trainer.threads import BLAS_THREAD_VARIABLES

    out = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
    try:
        import numpy  # noqa: F401  (loads its BLAS)
        from threadpoolctl import threadpool_info
    except ImportError:
        return out
    out["blas"] = sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
    return out


OPS = {f.__name__: f for f in (predict, pid, crash, fail, sleep, blas_threads)}

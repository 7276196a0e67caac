"""Hugging Face ZeroGPU: where the ``spaces`` package is importable, functions that run models are wrapped
with ``spaces.GPU`` (a GPU is attached for the call); elsewhere they run as they are (CPU, or a local GPU)."""

from __future__ import annotations

from collections.abc import Callable

try:  # present on Hugging Face Spaces only
    import spaces  # type: ignore
except ImportError:  # pragma: no cover - depends on the machine
    spaces = None

# ZeroGPU attaches a GPU to each request (and counts it against that caller's quota): there every request runs
# its own model calls, rather than through the app's batcher.
ZEROGPU = spaces is not None


def gpu(fn: Callable | None = None, *, duration: int = 60):
    """``@gpu`` / ``@gpu(duration=120)``: ``spaces.GPU`` when available, else the function unchanged."""

    def wrap(f: Callable) -> Callable:
        return spaces.GPU(duration=duration)(f) if spaces is not None else f

    return wrap(fn) if fn is not None else wrap

"""Warm models: once the page is served, a background thread loads the default models and runs one prediction
with each (that imports torch, transformers and grad-cam and pays the first pass's one-time costs), so the first
student's prediction does not.

There is one loader, ``ModelRegistry.load``: it loads a model once, and a request for a model that is being loaded
(here, or by another request) waits for that load instead of starting a second one. A request that comes before
this thread has reached its model therefore does the load itself, and the warm-up then finds it loaded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def prime(loaded) -> None:
    """One plain and one explained prediction on a blank patch: the passes the Predict tab and the API run."""
    from PIL import Image

    from histoapp.models.inference import classify_many, explain_many

    blank = Image.new("RGB", (loaded.input_size or 64,) * 2, (232, 190, 215))
    classify_many(loaded, [blank])
    explain_many(loaded, [blank])


def load_and_prime(registry, keys: list[str], warm: Callable | None = prime) -> list[str]:
    """Load every model of ``keys``, then run each once (``warm``): their names. Every model is loaded before the
    first passes (an explained one imports grad-cam), so a plain prediction asked meanwhile waits for the loads
    only. The warm-up of both designs: this thread (``Warmup``) and the model worker (``ops.warm``)."""
    models = [registry.load(key) for key in keys]
    for loaded in models:
        if warm is not None:
            warm(loaded)
    return [loaded.entry.name for loaded in models]


def status_line(state: str, error: str, models: list[str], seconds: float | None) -> str:
    """The page's one line on a warm-up (``Warmup.status``, ``ModelWorker.status``)."""
    if state not in ("ready", "failed"):
        return "⏳ *loading models… (a prediction asked for now waits for them)*"
    if state == "failed":
        return f"⚠️ *Loading the default models failed ({error}); they load on the first prediction.*"
    return f"✅ *Models ready ({', '.join(models) or 'none'}; loaded in {seconds:.1f} s).*"


class Warmup:
    """``start()`` loads ``keys()`` (evaluated in the thread: listing may probe the hub) through ``registry``."""

    def __init__(self, registry, keys: Callable[[], list[str]], *, warm: Callable | None = prime):
        self.registry = registry
        self._keys = keys
        self._warm = warm
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = "idle"  # -> loading -> ready | failed
        self.error = ""
        self.models: list[str] = []
        self.seconds: float | None = None

    def start(self) -> Warmup:
        """Start the thread (once; later calls do nothing)."""
        with self._lock:
            if self._thread is None:
                self.state = "loading"
                self._thread = threading.Thread(target=self._run, name="histoapp-warmup", daemon=True)
                self._thread.start()
        return self

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            self.models = load_and_prime(self.registry, self._keys(), self._warm)
            self.state = "ready"
        except Exception as exc:  # the app still works: the models then load on the first prediction
            self.error = f"{exc.__class__.__name__}: {exc}"
            self.state = "failed"
        finally:
            self.seconds = time.perf_counter() - t0
            self._done.set()

    @property
    def over(self) -> bool:
        return self.state in ("ready", "failed")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the warm-up is over (at once if it was never started); False on timeout."""
        return True if self._thread is None else self._done.wait(timeout)

    def status(self) -> str:
        """One line for the page."""
        return status_line(self.state, self.error, self.models, self.seconds)

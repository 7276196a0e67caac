"""What the Predict tab can predict with: the bundled demo models (``assets/models/<name>/``), the best
checkpoints of finished runs (``<runs>/<run>/<model>/<mag>/fold<k>/best/``) and hub ids when the network is
there. Checkpoint folders load through the trainer's one loading path (``trainer.models.load_checkpoint``);
loaded models are cached in memory and placed on CUDA when present, else the CPU. Listing reads the run folders
through ``trainer.rundir`` and imports no torch. The registry also holds the app's one ``Batcher`` (concurrent
requests' forward passes run as batches) and sets torch's CPU threads on first load."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from histoapp.settings import ASSETS, Settings
from trainer.rundir import checkpoint_family, runs_in

CARD_FILE = "card.md"
HUB_HOST, HUB_TIMEOUT_S = "huggingface.co", 1.5


@dataclass
class ModelEntry:
    """One choice in the model pickers. ``key`` is unique and stable (``demo:``, ``run:``, ``hub:`` prefixes)."""

    key: str
    name: str
    family: str  # "cnn" | "vlm"
    source: str  # "demo" | "run" | "hub"
    path: Path | None = None
    card: str = ""  # Markdown (card.md for demo models, a generated summary for runs)
    available: bool = True
    reason: str = ""  # why it is unavailable
    info: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name if self.available else f"{self.name} (unavailable: {self.reason})"


@dataclass
class LoadedModel:
    entry: ModelEntry
    adapter: object  # trainer.models.base.ModelAdapter
    meta: dict
    classes: list[str]
    input_size: int
    device: str
    trust: object | None = None  # trainer.trust.reference.TrustReference; None: no OOD reference, uncalibrated


def _hub_offline() -> str | None:
    """Why the hub cannot be used now (None: it can). A short TCP probe, so listing never hangs."""
    from trainer.env import offline_variable

    if offline_variable():
        return f"not downloaded yet, and the app is set to work offline ({offline_variable()}=1)"
    try:
        socket.create_connection((HUB_HOST, 443), timeout=HUB_TIMEOUT_S).close()
    except OSError:
        return f"not downloaded yet, and this machine cannot reach {HUB_HOST} to download it"
    return None


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an old/odd hub library: treat as not cached
        return False


class ModelRegistry:
    def __init__(
        self,
        settings: Settings,
        *,
        assets_dir: str | Path | None = None,
        hub_models: list[str] | None = None,
        device: str | None = None,
    ):
        self.settings = settings
        self.assets_dir = Path(assets_dir) if assets_dir else Path(getattr(settings, "assets_dir", ASSETS))
        self.hub_models = list(hub_models if hub_models is not None else settings.hub_models)
        self._device = device
        self._cache: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()  # guards the two dicts
        self._loading: dict[str, threading.Lock] = {}  # one per key: a model is loaded once, others wait for it
        self._hub_reason: str | None | bool = False  # False: not probed yet

    @property
    def device(self) -> str:
        if self._device is None:  # imports torch: done on first load, not at app start
            from trainer.models import default_device

            set_torch_threads(self.settings.torch_threads)
            self._device = default_device()
        return self._device

    @cached_property
    def batcher(self):
        """The app's one batcher of forward passes (``histoapp.models.batcher``)."""
        from histoapp.models.batcher import Batcher

        return Batcher(self.settings.predict_batch)

    # --- listing ------------------------------------------------------------------------------------
    def demo_models(self) -> list[ModelEntry]:
        out = []
        root = self.assets_dir / "models"
        for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
            family = checkpoint_family(folder)
            if family is None:
                continue
            card = (folder / CARD_FILE).read_text() if (folder / CARD_FILE).is_file() else ""
            out.append(ModelEntry(f"demo:{folder.name}", f"{folder.name} (demo)", family, "demo", folder, card))
        return out

    def run_models(self) -> list[ModelEntry]:
        from trainer.results import run_partial_mark

        out = []
        marks: dict[str, str] = {}  # run -> "stopped / partial" ... ("" for a run that finished its grid)
        # Finished folds only: a fold still training (or stopped) may change its best/ under us.
        for fold in (f for run in runs_in(self.settings.runs_dir) for f in run.folds(finished=True)):
            family = checkpoint_family(fold.best)
            if family is None:
                continue
            run, model, mag = fold.run, fold.model, fold.magnification
            metrics = fold.metrics() or {}
            m = metrics.get("metrics", metrics) if isinstance(metrics, dict) else {}
            auc = m.get("roc_auc") if isinstance(m, dict) else None
            if run not in marks:
                marks[run] = run_partial_mark(self.settings.runs_dir / run)
            name = (
                f"{run} / {model} / {mag} / {fold.name}"
                + (f" (test AUC {auc:.3f})" if isinstance(auc, (int, float)) else "")
                + (f" [{marks[run]}]" if marks[run] else "")
            )
            card = (
                f"**Run** `{run}` — model `{model}`, magnification {mag}, {fold.name} of a patient-level cross-validation"
                + (f" (**{marks[run]}**: the run ended before its whole grid)" if marks[run] else "")
                + ".\n\n"
                + (
                    "Test metrics: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items() if isinstance(v, float))
                    if isinstance(m, dict)
                    else ""
                )
            )
            out.append(
                ModelEntry(
                    f"run:{run}/{model}/{mag}/{fold.name}",
                    name,
                    family,
                    "run",
                    fold.best,
                    card,
                    info={"run": run, "model": model, "magnification": mag, "fold": fold.name, "metrics": m},
                )
            )
        return out

    def hub_entries(self) -> list[ModelEntry]:
        if self._hub_reason is False:
            self._hub_reason = _hub_offline()
        out = []
        for repo in self.hub_models:
            reason = self._hub_reason
            if reason and _hub_cached(repo):
                reason = None  # in the local hub cache: usable offline
            out.append(
                ModelEntry(
                    f"hub:{repo}",
                    f"{repo} (hub, zero-shot)",
                    "vlm",
                    "hub",
                    None,
                    f"Base model `{repo}` from the Hugging Face hub, asked zero-shot (not fine-tuned here).",
                    available=reason is None,
                    reason=reason or "",
                )
            )
        return out

    def list(self, family: str | None = None, *, include_hub: bool = True) -> list[ModelEntry]:
        entries = self.demo_models() + self.run_models() + (self.hub_entries() if include_hub else [])
        return [e for e in entries if family is None or e.family == family]

    def default_key(self, family: str) -> str | None:
        """The family's default model: its first demo model, else its first usable one (the hub is probed only
        when there is no demo model)."""
        demo = next((e.key for e in self.demo_models() if e.family == family), None)
        return demo or next((e.key for e in self.list(family) if e.available), None)

    def get(self, key: str) -> ModelEntry:
        for e in self.list(include_hub=key.startswith("hub:")):
            if e.key == key:
                return e
        raise KeyError(f"no model {key!r} in the registry (demo models, finished runs, hub ids)")

    # --- loading ------------------------------------------------------------------------------------
    def load(self, key: str) -> LoadedModel:
        """The model for ``key``, loaded once and kept in memory. A request for a model being loaded (by the
        warm-up or another request) waits for that load; models already loaded are not held up by it."""
        loaded = self._cache.get(key)
        if loaded is not None:
            return loaded
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            if key in self._cache:
                return self._cache[key]
            entry = self.get(key)
            if not entry.available:
                raise RuntimeError(f"{entry.name} is not available: {entry.reason}")
            if entry.source == "hub":
                ckpt = self._load_hub(entry)
            else:
                from trainer.models import load_checkpoint

                ckpt = load_checkpoint(entry.path, device=self.device)
            _freeze(ckpt.adapter)
            loaded = LoadedModel(entry, ckpt.adapter, ckpt.meta, ckpt.classes, ckpt.input_size, self.device, ckpt.trust)
            with self._lock:
                self._cache[key] = loaded
            return loaded

    def _load_hub(self, entry: ModelEntry):
        from trainer.config import ModelConfig
        from trainer.models import Checkpoint, build_adapter

        adapter = build_adapter(ModelConfig(family="vlm", name=entry.key[4:], mode="zero_shot", pretrained=True))
        adapter.module.to(self.device).eval()
        return Checkpoint.of(adapter, device=self.device)

    def unload(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._cache.clear()
            else:
                self._cache.pop(key, None)


def set_torch_threads(threads: int) -> None:
    """torch's CPU threads for the app's models, set once before the first forward pass (``Settings.torch_threads``;
    0 keeps torch's default). One inter-op thread: the app runs one forward pass at a time (``Batcher``), and on a
    small CPU more threads than cores only make the passes, and the web server, wait for each other."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # already set, or its inter-op pool has started: leave it
            torch.set_num_interop_threads(1)


def _freeze(adapter) -> None:
    """Inference only: no parameter gradients (Grad-CAM asks for the target layer's gradient explicitly)."""
    module = adapter.module
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)

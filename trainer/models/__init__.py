"""Model families. ``build_adapter(model_config)`` returns the family's ``ModelAdapter``; ``load_checkpoint(folder)``
resolves a saved checkpoint (adapter, classes, input size, metadata, trust reference), the one loading path of ``trainer evaluate``,
``trainer export``, the app's registry and the benches.

Each family registers a factory in ``FAMILIES`` (cnn: ``trainer/models/cnn.py``; vlm: ``trainer/models/vlm/``)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from trainer.config import ModelConfig
from trainer.models.base import ModelAdapter
from trainer.rundir import ADAPTER_FILE, BEST_DIR, ENGINE_META, checkpoint_family, read_json

# family -> "module:factory"; imported lazily so the CNN path never imports the VLM stack.
FAMILIES: dict[str, str] = {
    "cnn": "trainer.models.cnn:CNNAdapter",
    "vlm": "trainer.models.vlm.adapter:VLMAdapter",
}
DEFAULT_INPUT_SIZE = 224  # a checkpoint that records no input size (none of ours) was trained at ImageNet's


def adapter_class(family: str) -> type[ModelAdapter]:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; available: {', '.join(sorted(FAMILIES)) or 'none'}")
    module, factory = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), factory)


def build_adapter(config: ModelConfig, num_classes: int = 2) -> ModelAdapter:
    if config.init_from and config.family != "cnn":
        raise ValueError(
            f"model.init_from starts a CNN from a CNN checkpoint; the {config.family} family has no such option"
        )
    return adapter_class(config.family)(config, num_classes)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Checkpoint:
    """A loaded checkpoint folder with every fallback resolved once."""

    path: Path | None  # the folder holding adapter.json (``.../fold<k>/best`` or an exported model)
    adapter: ModelAdapter
    classes: list[str]
    input_size: int
    device: str
    meta: dict = field(default_factory=dict)  # engine.json: how it was trained (fold, target, stain ...)
    # trust.json + trust.safetensors (trainer.trust.reference): OOD reference, temperature, abstention bounds;
    # None for a checkpoint made before them (it then shows "no OOD reference").
    trust: object | None = None

    @classmethod
    def of(cls, adapter: ModelAdapter, *, meta: dict | None = None, path: Path | None = None, device: str = "cpu"):
        """Classes and input size from the metadata, else from the adapter (a base model from the hub has none)."""
        from trainer.data.records import LABELS, SUBTYPES

        meta = meta or {}
        classes = list(meta.get("classes") or (LABELS if adapter.num_classes == 2 else SUBTYPES))
        size = int(meta.get("input_size") or getattr(adapter, "input_size", None) or DEFAULT_INPUT_SIZE)
        return cls(path, adapter, classes, size, str(device), meta)


def checkpoint_folder(directory: str | Path) -> Path:
    """The folder with ``adapter.json``: ``directory`` itself, or its ``best/`` when a fold folder is given."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {directory}")
    if not (directory / ADAPTER_FILE).is_file() and (directory / BEST_DIR / ADAPTER_FILE).is_file():
        return directory / BEST_DIR
    return directory


def load_checkpoint(directory: str | Path, device: str | None = None) -> Checkpoint:
    """Load a checkpoint folder (``.../fold<k>/best``, its fold folder, or an exported model) without pickle."""
    directory = checkpoint_folder(directory)
    family = checkpoint_family(directory)
    if family is None:
        raise FileNotFoundError(f"not a checkpoint folder (no {ADAPTER_FILE} naming the model family): {directory}")
    try:
        cls = adapter_class(family)
    except ValueError as exc:
        raise ValueError(f"{directory}: {exc}") from None
    from trainer.trust.reference import TrustReference

    device = device or default_device()
    adapter = cls.load(directory, device=device)
    ckpt = Checkpoint.of(adapter, meta=read_json(directory / ENGINE_META), path=directory, device=device)
    ckpt.trust = TrustReference.load(directory)
    return ckpt

"""Checks before a launch, each refusal with its reason: the UI must never start a run that is bound to fail
(QLoRA without CUDA, a data folder that is missing or outside the allowed roots, a model family not installed)."""

from __future__ import annotations

import re
from pathlib import Path

from histoapp.settings import Settings
from trainer.config import ExperimentConfig
from trainer.data.records import MAGNIFICATIONS
from trainer.env import offline

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
CNN_MODES = ("full", "linear_probe")
VLM_MODES = ("linear_probe", "lora", "qlora")


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def families() -> set[str]:
    """Model families this install can build (``vlm`` appears once trainer/models/vlm is present)."""
    from trainer.models import FAMILIES

    return set(FAMILIES)


def within(path: Path, roots: list[Path]) -> bool:
    path = path.resolve()
    return any(path == r or r in path.parents for r in (Path(r).resolve() for r in roots))


def check_config(
    cfg: ExperimentConfig,
    settings: Settings,
    *,
    cuda: bool | None = None,
    available_families: set[str] | None = None,
    data_made_at_launch: bool = False,
) -> tuple[list[str], list[str]]:
    """(errors, warnings). A launch goes ahead only without errors; warnings are shown beside it.
    ``data_made_at_launch``: the data folder need not exist yet (the launch exports it)."""
    cuda = cuda_available() if cuda is None else cuda
    fams = families() if available_families is None else available_families
    errors: list[str] = []
    warnings: list[str] = []
    if not NAME_RE.match(cfg.name or ""):
        errors.append(f"run name {cfg.name!r}: use letters, digits, '.', '_' or '-' (at most 80, no spaces or slashes)")
    if not cfg.models:
        errors.append("no model chosen")
    for m in cfg.models:
        label = f"model {m.name!r}"
        if m.family not in fams:
            errors.append(
                f"{label}: the {m.family!r} model family is not available in this install"
                + (" (trainer/models/vlm is not installed yet)" if m.family == "vlm" else "")
            )
            continue
        if m.family == "cnn":
            if m.mode not in CNN_MODES:
                errors.append(
                    f"{label}: CNNs train in mode {' or '.join(CNN_MODES)}, not {m.mode!r} (LoRA/QLoRA are for VLMs)"
                )
            from trainer.models.cnn import available_models, hub_checkpoints

            if m.name not in available_models():
                errors.append(f"{label}: not a torchvision architecture (e.g. resnet34, vgg19, alexnet)")
            elif m.pretrained and not m.weights_path and not any(hub_checkpoints().glob(f"{m.name}-*")):
                warnings.append(
                    f"{label}: ImageNet weights are not in the torch hub cache; the run downloads them and fails "
                    f"quickly without a network (untick 'pretrained' to train from scratch)"
                )
            if m.weights_path and not Path(m.weights_path).is_file():
                errors.append(f"{label}: weights file not found: {m.weights_path}")
        if m.family == "vlm":
            if m.mode not in VLM_MODES:
                errors.append(f"{label}: a VLM trains in mode {', '.join(VLM_MODES)}, not {m.mode!r}")
            local = Path(m.name).expanduser()
            if (m.name.startswith((".", "/", "~")) or local.exists()) and not local.is_dir():
                errors.append(f"{label}: local model folder not found")
            elif not local.is_dir() and offline():
                warnings.append(f"{label}: offline mode — the model must already be in the Hugging Face cache")
        if m.mode == "qlora" and not cuda:
            errors.append(f"{label}: QLoRA needs a CUDA GPU (4-bit bitsandbytes); this machine has none — use LoRA")
        if m.mode in ("lora", "qlora"):
            if m.lora.r < 1 or m.lora.alpha < 1:
                errors.append(f"{label}: LoRA r and alpha must be at least 1")
            if not 0.0 <= m.lora.dropout < 1.0:
                errors.append(f"{label}: LoRA dropout must be in [0, 1)")
    t, d = cfg.train, cfg.data
    if t.optimizer in ("adamw8bit", "paged_adamw8bit") and not cuda:
        errors.append(f"optimizer {t.optimizer}: 8-bit optimisers need a CUDA GPU")
    if t.mixed_precision == "fp16" and not cuda:
        errors.append("mixed precision fp16 needs a CUDA GPU (use 'auto' or 'no')")
    for key, value, low in (
        ("epochs", t.epochs, 1),
        ("batch size", t.batch_size, 1),
        ("gradient accumulation", t.grad_accum, 1),
        ("folds", d.folds, 2),
        ("input size", d.input_size, 16),
    ):
        if value < low:
            errors.append(f"{key} must be at least {low} (got {value})")
    if t.lr <= 0:
        errors.append(f"learning rate must be positive (got {t.lr})")
    if t.max_steps is not None and t.max_steps < 1:
        errors.append("max steps must be at least 1 (or empty for no cap)")
    if not d.magnifications:
        errors.append("choose at least one magnification (or 'all')")
    bad = [m for m in d.magnifications if m not in (*MAGNIFICATIONS, "all")]
    if bad:
        errors.append(f"unknown magnification(s) {bad}; use {', '.join(MAGNIFICATIONS)} or all")
    root_errors = check_data_root(cfg, settings, must_exist=not data_made_at_launch)
    errors += root_errors
    if not root_errors and t.batch_size > 1:
        warnings += check_batch_size(cfg)
    return errors, warnings


def training_share(cfg: ExperimentConfig) -> float:
    """The share of a dataset's images one fold trains on: the other folds' patients less the validation share,
    and ``data.subsample`` / ``data.train_patients`` where set (about, as whole patients move)."""
    d = cfg.data
    share = (d.folds - 1) / d.folds * (1.0 - d.val_fraction) if d.folds >= 2 else 1.0
    for key in ("subsample", "train_patients"):
        share *= getattr(d, key, None) or 1.0
    return share


def check_batch_size(cfg: ExperimentConfig) -> list[str]:
    """A warning when the batch is larger than a fold's training set (every step then sees the whole set once:
    one step per epoch). Counts image files only up to what the batch needs, so a large dataset costs little."""
    from itertools import islice

    from trainer.data.index import is_image_name, iter_image_files

    roots = [Path(r).expanduser() for r in cfg.data.roots]
    if not all(r.is_dir() for r in roots):
        return []  # generated at launch, or a CSV manifest: its size is not known here
    share = training_share(cfg)
    need = int(cfg.train.batch_size / share) + 1  # images a dataset needs for one fold to fill a batch
    files = (p for r in roots for p in iter_image_files(r) if is_image_name(p))  # several folders: one dataset
    found = sum(1 for _ in islice(files, need))
    if found >= need:
        return []
    where = " + ".join(map(str, roots))
    return [
        f"batch size {cfg.train.batch_size} is larger than a fold's training set (about {int(found * share)} of the "
        f"{found} images in {where}, before any magnification filter): each epoch is one step over the whole set; "
        "a batch of 16-64 trains better"
    ]


def check_data_root(cfg: ExperimentConfig, settings: Settings, *, must_exist: bool = True) -> list[str]:
    """Every data folder (several are trained on as one dataset) must be allowed and, unless made at launch, exist."""
    if not cfg.data.roots:
        return ["no data folder given"]
    return [e for r in cfg.data.roots for e in _check_root(r, cfg.data.source, settings, must_exist)]


def _check_root(given: str, source: str, settings: Settings, must_exist: bool) -> list[str]:
    root = Path(given).expanduser()
    if not root.is_absolute():
        return [f"data folder {given!r}: give an absolute path"]
    if not within(root, settings.allowed_roots):
        return [
            f"data folder {root} is outside the allowed data roots ({', '.join(map(str, settings.allowed_roots))}; "
            f"set HISTOAPP_DATA_ROOTS to allow more)"
        ]
    if source == "synthetic" or not must_exist:
        return []  # generated (or exported) there on first use
    if source == "csv" and root.is_file():
        return []
    if not root.exists():
        return [f"data folder {root} does not exist"]
    if not root.is_dir():
        return [f"data folder {root} is not a folder"]
    return []

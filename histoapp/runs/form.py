"""The Train tab's form bound to the trainer's one config object: ``config_to_form`` fills the fields from an
``ExperimentConfig``, ``form_to_config`` builds the config back (through ``ExperimentConfig.from_dict``, so its
type checks apply). Keys the form does not show (optimizer, scheduler, ...) come from the preset unchanged,
and any key can be set with ``key=value`` lines (``ExperimentConfig.with_overrides``)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from histoapp.settings import PROJECT_ROOT, Settings
from trainer.config import ExperimentConfig
from trainer.data import sources as data_sources

CONFIGS = PROJECT_ROOT / "trainer" / "configs"
PRESETS = {
    "small demo (CPU: 5 min alone, up to 1 h busy)": "quick_demo.yaml",
    "paper CNN": "paper_cnn.yaml",
    "paper LoRA": "paper_lora.yaml",
}

# Data-source choices shown in the form -> data.source: the sources' registry in its words (IDC first: the quick
# demo's bundled real subset, assets/data/idc-mini, or a full copy), generated demo data, and the annotated set
# (the annotation store's export, a folder of class folders, written at launch).
SOURCES = {
    **{s.title: s.name for s in data_sources.SOURCES.values()},
    "generated demo data": data_sources.SYNTHETIC,
    "annotated set": data_sources.folder.SOURCE.name,
}
ANNOTATED_DIR = "annotated_export"  # below settings.data_dir: the annotation store exports one folder per run here
STAIN = {"none": None, "macenko": "macenko", "reinhard": "reinhard"}

# Form fields in the order the tab lays them out; each is one config key ("models.name": the model list).
FIELDS = [
    "name",
    "model.family",
    "models.name",
    "model.mode",
    "model.pretrained",
    "model.lora.r",
    "model.lora.alpha",
    "model.lora.dropout",
    "data.source",
    "data.root",
    "data.magnifications",
    "data.target",
    "data.folds",
    "data.input_size",
    "data.stain_normalization",
    "train.epochs",
    "train.lr",
    "train.batch_size",
    "train.grad_accum",
    "train.max_steps",
    "overrides",
]

# What a scheduler is asked for (the SLURM backend's form fields, after FIELDS; not part of the config, so the
# same config trains anywhere): checked by the backend's ``resources()``.
JOB_FIELDS = ["job.partition", "job.gpus", "job.time"]


class PresetMissing(FileNotFoundError):
    pass


def preset_names() -> list[str]:
    return list(PRESETS)


def load_preset(name: str, settings: Settings) -> ExperimentConfig:
    """The preset's YAML with paths placed in this app's folders (its name is the runs' prefix). ``name`` is the
    form's label or the file's stem (``quick_demo``, as the API's ``launch_run`` takes it)."""
    name = next((k for k, v in PRESETS.items() if Path(v).stem == name), name)
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    path = CONFIGS / PRESETS[name]
    if not path.is_file():
        raise PresetMissing(
            f"preset {name!r} needs {path.relative_to(PROJECT_ROOT)}, which this install does not have yet"
        )
    return place(ExperimentConfig.from_yaml(path), settings)


def fresh_run_name(prefix: str, runs_dir: Path) -> str:
    """``<prefix>-<date>-<time>`` stamped now (at launch, not when the form was drawn), with ``-2``, ``-3`` ... if
    a run of that name exists already."""
    name = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    k, free = 1, name
    while (Path(runs_dir) / free).exists():
        k += 1
        free = f"{name}-{k}"
    return free


def place(cfg: ExperimentConfig, settings: Settings, *, name: str | None = None) -> ExperimentConfig:
    """Runs go to ``settings.runs_dir``; a relative ``data/...`` root moves under ``settings.data_dir``."""
    data = cfg.to_dict()
    data["output_dir"] = str(settings.runs_dir)
    if name:
        data["name"] = name
    placed = [
        str(settings.data_dir.joinpath(*Path(r).parts[1:]) if Path(r).parts[0] == "data" else PROJECT_ROOT / r)
        if not Path(r).is_absolute()
        else r
        for r in cfg.data.roots
    ]
    data["data"]["root"] = placed if len(placed) > 1 else "".join(placed)
    return ExperimentConfig.from_dict(data)


def split_roots(text) -> str | list[str]:
    """The form's data folder field: one folder, or several (one per line, or ``os.pathsep``-separated, as in
    ``HISTOAPP_DATA_ROOTS``) trained on as one dataset (``trainer.data.roots``)."""
    roots = [r.strip() for r in re.split(rf"[\n{re.escape(os.pathsep)}]", str(text or "")) if r.strip()]
    return roots if len(roots) > 1 else "".join(roots)


def source_choice(cfg: ExperimentConfig, settings: Settings) -> str:
    annotated = settings.data_dir / ANNOTATED_DIR
    root = Path(cfg.data.roots[0]) if cfg.data.roots else None
    if root and (root == annotated or annotated in root.parents):
        return "annotated set"  # the form's placeholder, or a run's own export below it
    return next(k for k, v in SOURCES.items() if v == cfg.data.source and k != "annotated set")


def config_to_form(cfg: ExperimentConfig, settings: Settings) -> dict:
    m = cfg.models[0]
    return {
        "name": cfg.name,
        "model.family": m.family,
        "models.name": format_models(cfg),
        "model.mode": m.mode,
        "model.pretrained": m.pretrained,
        "model.lora.r": m.lora.r,
        "model.lora.alpha": m.lora.alpha,
        "model.lora.dropout": m.lora.dropout,
        "data.source": source_choice(cfg, settings),
        "data.root": os.pathsep.join(cfg.data.roots),
        "data.magnifications": list(cfg.data.magnifications),
        "data.target": cfg.data.target,
        "data.folds": cfg.data.folds,
        "data.input_size": cfg.data.input_size,
        "data.stain_normalization": cfg.data.stain_normalization or "none",
        "train.epochs": cfg.train.epochs,
        "train.lr": cfg.train.lr,
        "train.batch_size": cfg.train.batch_size,
        "train.grad_accum": cfg.train.grad_accum,
        "train.max_steps": cfg.train.max_steps or 0,
        "overrides": "",
    }


def format_models(cfg: ExperimentConfig) -> str:
    """One model per line: ``name [mode=...] [label=...]`` (mode only where it differs from the first model's)."""
    mode = cfg.models[0].mode
    return "\n".join(
        " ".join([m.name] + ([f"mode={m.mode}"] if m.mode != mode else []) + ([f"label={m.label}"] if m.label else []))
        for m in cfg.models
    )


def parse_models(text, *, default_mode: str) -> list[dict]:
    """The inverse of ``format_models``; commas separate models too (``alexnet, vgg19, resnet34``)."""
    out = []
    for line in str(text or "").replace(",", "\n").splitlines():
        tokens = line.split()
        if not tokens:
            continue
        entry = {"name": tokens[0], "mode": default_mode, "label": None}
        for tok in tokens[1:]:
            key, sep, value = tok.partition("=")
            if not sep or key not in ("mode", "label") or not value:
                raise ValueError(
                    f"models: {tok!r} in {line.strip()!r}; write `name [mode=...] [label=...]`, one model per line"
                )
            entry[key] = value
        out.append(entry)
    if not out:
        raise ValueError("give at least one architecture or hub id")
    return out


def _int(v, key: str) -> int:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: {v!r} is not a number") from None
    if f != int(f):
        raise ValueError(f"{key}: {v!r} is not a whole number")
    return int(f)


def form_to_config(values: dict, base: ExperimentConfig, settings: Settings) -> ExperimentConfig:
    """The config the form describes, on top of ``base`` (the preset) for the keys it does not show.
    Raises ValueError with the offending field on bad input."""
    data = base.to_dict()
    entries = parse_models(values["models.name"], default_mode=values["model.mode"])
    lora = {
        "r": _int(values["model.lora.r"], "LoRA r"),
        "alpha": _int(values["model.lora.alpha"], "LoRA alpha"),
        "dropout": float(values["model.lora.dropout"]),
    }
    models = []
    for e in entries:
        # A model the preset already had keeps its own settings (weights file, prompt, LoRA target modules ...).
        own = (
            next(
                (m for m in data["models"] if (m["name"], m["mode"], m["label"]) == (e["name"], e["mode"], e["label"])),
                None,
            )
            or next((m for m in data["models"] if m["name"] == e["name"]), None)
            or {**data["models"][0], "label": None}
        )
        models.append(
            {
                **own,
                **e,
                "family": values["model.family"],
                "pretrained": bool(values["model.pretrained"]),
                "lora": {**own["lora"], **lora},
            }
        )
    data["models"] = models
    choice = values["data.source"]
    if choice not in SOURCES:
        raise ValueError(f"unknown data source {choice!r}")
    root = str(settings.data_dir / ANNOTATED_DIR) if choice == "annotated set" else split_roots(values["data.root"])
    # A blank name is stamped now, so launching again (after a reload too) never reuses an old run's name.
    data["name"] = str(values["name"] or "").strip() or fresh_run_name(base.name, settings.runs_dir)
    data["output_dir"] = str(settings.runs_dir)
    data["data"].update(
        source=SOURCES[choice],
        root=root,
        magnifications=list(values["data.magnifications"] or []),
        target=values["data.target"],
        folds=_int(values["data.folds"], "folds"),
        input_size=_int(values["data.input_size"], "input size"),
        stain_normalization=STAIN.get(values["data.stain_normalization"] or "none"),
    )
    max_steps = _int(values["train.max_steps"] or 0, "max steps")
    data["train"].update(
        epochs=_int(values["train.epochs"], "epochs"),
        lr=float(values["train.lr"]),
        batch_size=_int(values["train.batch_size"], "batch size"),
        grad_accum=_int(values["train.grad_accum"], "gradient accumulation"),
        max_steps=max_steps or None,
    )
    cfg = ExperimentConfig.from_dict(data)
    lines = [
        ln.strip()
        for ln in str(values.get("overrides") or "").splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
    return cfg.with_overrides(lines) if lines else cfg

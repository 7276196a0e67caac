"""The one typed experiment config. It flows unchanged from YAML / CLI flags / the UI form to a run and is
saved beside every run as ``config.yaml``.

    cfg = ExperimentConfig.from_yaml("trainer/configs/paper_cnn.yaml").with_overrides(["train.epochs=2"])
"""

from __future__ import annotations

import dataclasses
import re
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from trainer.data.sources import DATA_SOURCES

Family = Literal["cnn", "vlm"]
Mode = Literal["full", "linear_probe", "lora", "qlora", "zero_shot"]
DataSource = Literal[DATA_SOURCES]  # the sources' registry (trainer.data.sources.SOURCES), synthetic, auto


@dataclass
class DataConfig:
    source: DataSource = "breakhis"
    # Dataset root (for "synthetic": where the generated data is written), or a list of roots indexed as one
    # dataset (``trainer.data.roots``: e.g. idc/ + idc-more/; the same patient id in two roots is one patient).
    root: str | list[str] = ""
    # Each entry is one experiment of the grid: "40X", "100X", "200X", "400X", or "all" (magnifications pooled).
    magnifications: list[str] = field(default_factory=lambda: ["40X", "100X", "200X", "400X"])
    target: Literal["label", "subtype"] = "label"  # binary benign/malignant, or the 8 subtypes
    folds: int = 5
    seed: int = 42
    val_fraction: float = 0.15
    splits_file: str | None = None  # reuse saved folds (every model of a comparison sees the same folds)
    folds_to_run: list[int] | None = None  # a subset of folds (None: all)
    input_size: int = 224
    cache: Literal["memory", "disk", "none"] = "memory"
    stain_normalization: Literal["macenko", "reinhard"] | None = None
    # Training colour jitter (brightness/contrast/saturation +-s, hue +-s/5). H&E colour varies between slides and
    # labs; stronger colour augmentation is a common remedy (Tellez et al., MedIA 2019), though 0.3 did worse than
    # 0.1 on IDC here (results/idc/README.md).
    color_jitter: float = 0.1
    # Training stain jitter in HED space (Tellez et al. 2019; trainer.data.stain.HEDJitter): each stain's amount
    # is scaled by U(1-s, 1+s) and shifted by U(-s, s). 0: off; 0.05 is Tellez's "HED-light".
    hed_jitter: float = 0.0
    num_workers: int = 2
    # Keep this share (0-1] of each patient's training and validation images, per class, drawn with `seed`
    # (CPU-sized runs on large per-patch sets such as IDC); test images are always all kept. None: all.
    subsample: float | None = None
    # Keep this share (0-1] of each fold's training patients, whole, drawn with `seed` + fold; validation and test
    # patients are untouched (a learning curve over patients, results/idc/README.md). None: all.
    train_patients: float | None = None
    # Who is one patient for the folds (trainer.data.grouping). "group": BreakHis slide ids that share
    # <YY>-<number> (14-22549AB, 14-22549CD, 14-22549G) may be one person, so they stay in one fold (cautious);
    # "slide": every slide id is its own patient (the official count's 82).
    patient_grouping: Literal["group", "slide"] = "group"
    # Make the folds over the patients that have images at data.magnifications only (the rest are left out). In a
    # partial copy (../shared/data/breakhis: 22 of its 33 slides have 100X images), folds made over every
    # magnification's patients can give a 100X test fold almost no benign image. Ignored when "all" is listed.
    split_on_magnifications: bool = False

    def __post_init__(self) -> None:
        # One root is always a plain string (configs, forms and run folders written before lists were allowed).
        if isinstance(self.root, list) and len(self.root) <= 1:
            self.root = self.root[0] if self.root else ""

    @property
    def roots(self) -> list[str]:
        """The dataset roots, in order (one for a single root; none when unset)."""
        return list(self.root) if isinstance(self.root, list) else ([self.root] if self.root else [])


@dataclass
class LoRAConfig:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # Language-model projections; the vision encoder stays frozen (paper).
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class ModelConfig:
    family: Family = "cnn"
    # torchvision architecture name (cnn), or a hub id / local folder (vlm).
    name: str = "resnet34"
    mode: Mode = "full"
    pretrained: bool = True  # ImageNet weights (cnn) when they can be had
    weights_path: str | None = None  # local weights file (cnn) instead of the torchvision download
    # A checkpoint folder (a run's .../fold<k>/best, its fold folder, or an exported model) whose weights start this
    # CNN (transfer, e.g. from IDC-trained weights), read by trainer.models.load_checkpoint (no pickle); the
    # architecture must match, the head is kept when its classes fit. Replaces pretrained / weights_path.
    init_from: str | None = None
    # ResNets (cnn): 16 or 8 keeps the last stage(s) at full resolution (their first block's stride 2 -> 1), so
    # small inputs keep a usable feature map: at 64 px, 16 gives layer4 a 4x4 map instead of 2x2 (finer features
    # for 50 px IDC patches, and a Grad-CAM map on layer4). None: the architecture's own (32).
    output_stride: int | None = None
    label: str | None = None  # folder / table name of this model in results (default derived from name+mode)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    freeze_vision: bool = True
    prompt: str | None = None  # VLM question (default per family)
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False

    @property
    def display_name(self) -> str:
        if self.label:
            return self.label
        base = Path(self.name).name if ("/" in self.name or Path(self.name).exists()) else self.name
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", base)
        return base if (self.family == "cnn" and self.mode == "full") else f"{base}-{self.mode}"

    @classmethod
    def from_dict(cls, data: dict, where: str = "model") -> ModelConfig:
        """A model config from plain data (a checkpoint's ``adapter.json``), checked like a whole config."""
        return _build(cls, data, where)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    grad_accum: int = 1
    optimizer: Literal["adamw", "sgd", "adamw8bit", "paged_adamw8bit"] = "adamw"
    lr: float = 1e-4
    weight_decay: float = 1e-4
    scheduler: Literal["cosine", "step", "none"] = "cosine"
    warmup_ratio: float = 0.0
    early_stopping_patience: int = 3  # epochs without validation improvement (0: off)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"  # auto: bf16 on a GPU that has it, else no
    max_steps: int | None = None  # cap optimiser steps per fold (smoke tests, demos)
    balance_classes: bool = False  # draw training images so each class is seen equally often (imbalanced data)
    # Validate, keep and export an exponential moving average of the weights (trainer/engine/ema.py), updated
    # after every optimiser step with this decay (0.995: about the last 200 steps). 0: off, the raw weights.
    ema_decay: float = 0.0
    log_every: int = 10  # steps between metrics.jsonl step events
    # Save the resume state (last/) every this many optimiser steps inside an epoch too, so a killed fold resumes
    # from there instead of its last epoch's end (0: at epoch ends only). Each save writes the trainable weights
    # and the optimiser state (about 3x the weights with AdamW).
    checkpoint_every: int = 200


@dataclass
class TrustConfig:
    """When a model does not answer (``trainer.trust``): the OOD reference fitted at the end of training, the
    temperature, and the bounds of the one abstention rule (``trainer/trust/abstain.py``). README lists them."""

    enabled: bool = True  # fit the OOD reference and the temperature at the end of each fold
    # OOD threshold: this quantile of the validation images' Mahalanobis scores. 0.95 would flag 5 % of
    # in-distribution images by construction; with a fold's 2-3 validation patients, 0.99 flagged up to 6.5 % of
    # held-out IDC patients' patches (their stain differs), 0.995 at most 4.3 % (results/idc/trust.md).
    ood_quantile: float = 0.995
    reference_images: int = 10000  # at most this many training images (drawn with data.seed) form the reference
    max_features: int = 512  # wider features (VGG/AlexNet's 4096) are projected on their top principal axes
    calibrate: bool = True  # temperature scaling on the validation logits (Guo et al. 2017)
    # Abstain when the calibrated P(malignant) lies strictly inside (uncertain_low, uncertain_high).
    uncertain_low: float = 0.35
    uncertain_high: float = 0.65
    # Tissue / colour checks (trainer/trust/tissue.py): a pixel is tissue when its HSV saturation is at least
    # tissue_saturation and it is not near-white; of the clearly stained ones, H&E pixels have a pink-to-purple hue.
    tissue_saturation: float = 0.05
    min_tissue_fraction: float = 0.10
    min_he_fraction: float = 0.50
    # Pixel noise (any colours, palette or transparency): neighbouring pixels' correlation under this. Real IDC
    # patches from 0.15 (2,160 patches of assets/data/idc-mini and the examples), noise 0 +- 0.01 (issue 23).
    min_neighbour_correlation: float = 0.05
    # Too small when enlarged from a thumbnail whose shorter side is under MIN_SIDE (16 px; trainer/trust/tissue.py):
    # by pixel repetition, when its neighbouring pixels are at least this often exact repeats (any grid),
    blocky_fraction: float = 0.50
    # or by any common kernel (nearest, bilinear, bicubic, Lanczos, OpenCV's bicubic), when such an enlargement
    # leaves at most this share of the image's variance unexplained: enlarged thumbnails of real IDC patches at
    # most 0.0004; real IDC patches with tissue pixels from 0.0018 (a glass strip; tissue from 0.01), BreakHis
    # from 0.14 (bench/enlarged.py, results/idc/trust.md).
    max_fit_residual: float = 0.001

    @classmethod
    def from_dict(cls, data: dict, where: str = "trust") -> TrustConfig:
        """A trust config from plain data (a checkpoint's ``trust.json``), checked like a whole config."""
        return _build(cls, data, where)


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    models: list[ModelConfig] = field(default_factory=lambda: [ModelConfig()])
    train: TrainConfig = field(default_factory=TrainConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    notes: str = ""

    # --- paths ---------------------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    # --- (de)serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExperimentConfig:
        data = dict(data or {})
        if "model" in data:  # a single model may be written as `model:`
            if "models" in data:
                raise ValueError("config: give either `model` or `models`, not both")
            data["models"] = [data.pop("model")]
        return _build(cls, data, "config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise FileNotFoundError(f"config file not readable: {path} ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: invalid YAML ({exc})") from None
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
        return text

    def with_overrides(self, overrides: list[str] | None) -> ExperimentConfig:
        """Apply ``dotted.key=value`` overrides (values parsed as YAML). ``models.0.name=vgg19``
        addresses one model; ``model.X=...`` applies to every model."""
        data = self.to_dict()
        for item in overrides or []:
            if "=" not in item:
                raise ValueError(f"override {item!r} is not key=value")
            key, raw = item.split("=", 1)
            value = yaml.safe_load(raw) if raw != "" else None
            parts = key.strip().split(".")
            targets = [data]
            if parts[0] == "model":
                targets, parts = data["models"], parts[1:]
            for t in targets:
                node = t
                for p in parts[:-1]:
                    node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
                if isinstance(node, list):
                    node[int(parts[-1])] = value
                else:
                    node[parts[-1]] = value
        return ExperimentConfig.from_dict(data)


def _build(tp: Any, value: Any, where: str) -> Any:
    """Build dataclass / typed value ``tp`` from plain data, refusing unknown keys and wrong types."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        hints = get_type_hints(tp)
        names = {f.name for f in fields(tp)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return tp(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(map(repr, get_args(tp)))}")
        return value
    if origin in (list,):
        if not isinstance(value, (list, tuple)):
            value = [value]  # a single value where a list is expected
        (item,) = get_args(tp)
        return [_build(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    args = get_args(tp)
    if origin in (Union, types.UnionType):  # Optional[X], or X | Y (the first type that takes the value)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for arm in inner[:-1]:
            try:
                return _build(arm, value, where)
            except ValueError:
                pass
        return _build(inner[-1], value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    if tp in (int, float, bool, str):
        raise ValueError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value

"""torchvision CNNs (AlexNet, VGG19, ResNet34 as in the paper, or any torchvision classification model by
name) with the classifier head replaced for 2 classes (or the 8 BreakHis subtypes).

ImageNet weights come through torchvision's weights API: from the torch hub cache when present, else a
download with a short timeout, or from a local file (``model.weights_path``). Offline, the download fails
fast with a message naming ``model.pretrained=false`` / ``model.weights_path``."""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from trainer.config import ModelConfig
from trainer.env import offline
from trainer.models.base import ADAPTER_FILE, ModelAdapter, first_input, write_adapter_meta

WEIGHTS_FILE = "model.safetensors"
DOWNLOAD_TIMEOUT_S = 15.0


class WeightsUnavailableError(ValueError):
    """Pretrained weights cannot be had (offline, missing file). A ValueError so the CLI prints one clear line."""


def available_models() -> list[str]:
    """Every torchvision image-classification architecture name (``resnet34``, ``convnext_tiny`` ...)."""
    from torchvision import models

    return sorted(models.list_models(module=models))


def _unavailable(name: str, why: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"ImageNet weights for {name!r} are not available ({why}). Train from scratch with "
        f"`--set model.pretrained=false`, or give a local weights file with `--set model.weights_path=/path/to/{name}.pth` "
        f"(a torchvision .pth or .safetensors state dict), or put torchvision's file in {hub_checkpoints()}"
    )


def hub_checkpoints() -> Path:
    """torchvision's weights cache (the torch hub's ``checkpoints`` folder)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _download(url: str, dest: Path, name: str) -> None:
    """torch.hub's downloader has no timeout (it hangs without a network); this one fails fast."""
    from tqdm.auto import tqdm

    tmp = dest.with_suffix(dest.suffix + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp, open(tmp, "wb") as fh:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}") as bar:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    fh.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, dest)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise _unavailable(name, f"download of {url} failed: {getattr(exc, 'reason', exc)}") from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a .pth/.pt file without unpickling code (weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors of many kinds; the message is what matters
        raise ValueError(f"{path}: not a loadable weights file ({exc.__class__.__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """torchvision's DEFAULT ImageNet weights for ``name``: hub cache, else a fast-failing download."""
    from torchvision import models

    try:
        weights = models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError) as exc:
        raise _unavailable(name, f"torchvision has no weights for it: {exc}") from None
    dest = hub_checkpoints() / os.path.basename(weights.url)
    if not dest.is_file():
        if offline():
            raise _unavailable(name, "offline mode is set and they are not in the torch hub cache")
        _download(weights.url, dest, name)
    return read_state_dict(dest)


def last_linear(model: nn.Module) -> str:
    """The qualified name of the last ``nn.Linear``: the classifier head of every torchvision classifier that has
    one. Its input is the model's penultimate features (the OOD check's, ``logits_and_features``)."""
    last = None
    for qualname, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            last = qualname
    if last is None:
        raise ValueError(f"{model.__class__.__name__}: no linear classifier head to replace (unsupported architecture)")
    return last


def _replace_head(model: nn.Module, num_classes: int) -> str:
    """Swap the last ``nn.Linear`` for a new one with ``num_classes`` outputs."""
    last = last_linear(model)
    parent = model.get_submodule(last.rsplit(".", 1)[0]) if "." in last else model
    old = model.get_submodule(last)
    setattr(parent, last.rsplit(".", 1)[-1], nn.Linear(old.in_features, num_classes))
    return last


def resnet_stride(model: nn.Module) -> int:
    """A torchvision ResNet's total stride: 4 in the stem, then 2 for each of ``layer2``-``layer4`` whose first
    block still has a stride-2 conv (``set_output_stride`` sets them to 1)."""
    stride = 4
    for stage in ("layer2", "layer3", "layer4"):
        if any(isinstance(m, nn.Conv2d) and m.stride == (2, 2) for m in getattr(model, stage)[0].modules()):
            stride *= 2
    return stride


def set_output_stride(model: nn.Module, output_stride: int) -> nn.Module:
    """Make a torchvision ResNet's total stride ``output_stride`` (32, 16 or 8) by setting the stride-2 convs of
    the first block of ``layer4`` (16), and of ``layer3`` (8), to stride 1. No dilation (DeepLab's choice, which
    keeps the receptive field): at the small inputs this is for, the receptive field already spans the image.
    The weights are unchanged, so ImageNet or saved weights load as before."""
    stages = {32: [], 16: ["layer4"], 8: ["layer3", "layer4"]}
    if output_stride not in stages:
        raise ValueError(f"model.output_stride must be 32, 16 or 8, not {output_stride!r}")
    if not all(hasattr(model, f"layer{i}") for i in range(1, 5)):
        raise ValueError(f"model.output_stride applies to ResNets only, not {model.__class__.__name__}")
    for stage in stages[output_stride]:
        for conv in getattr(model, stage)[0].modules():
            if isinstance(conv, nn.Conv2d) and conv.stride == (2, 2):
                conv.stride = (1, 1)
    return model


def build_cnn(
    name: str,
    num_classes: int = 2,
    *,
    pretrained: bool = False,
    weights_path: str | None = None,
    output_stride: int | None = None,
) -> nn.Module:
    from torchvision import models

    if name not in models.list_models(module=models):
        close = [m for m in available_models() if name.lower().rstrip("0123456789_") in m][:8]
        raise ValueError(
            f"unknown torchvision model {name!r}"
            + (f"; did you mean {', '.join(close)}?" if close else "; see torchvision.models.list_models()")
        )
    model = models.get_model(name, weights=None)
    if output_stride:
        set_output_stride(model, output_stride)
    if weights_path or pretrained:
        state = read_state_dict(weights_path) if weights_path else imagenet_state_dict(name)
        head = _replace_head(model, num_classes)
        # The ImageNet head (1000 classes) does not fit and is dropped; a fine-tuned file's head is kept.
        _load_fitting(model, state, head, f"weights for {name!r}")
        return model
    _replace_head(model, num_classes)
    return model


def init_from_checkpoint(model: nn.Module, name: str, folder: str | Path) -> None:
    """Start ``model`` (architecture ``name``) from another run's CNN checkpoint (``model.init_from``: transfer, e.g.
    from IDC-trained weights), loaded by ``trainer.models.load_checkpoint`` (safetensors, no pickle). Every weight
    but a head of another shape must fit; the head is kept when the classes match."""
    from trainer.models import load_checkpoint

    source = load_checkpoint(folder, "cpu")
    if source.adapter.family != "cnn" or source.adapter.config.name != name:
        raise ValueError(
            f"model.init_from {folder}: a {source.adapter.family} {source.adapter.config.name!r} checkpoint cannot "
            f"start a CNN {name!r} (the architecture must be the same)"
        )
    _load_fitting(
        model, source.adapter.module.state_dict(), last_linear(model), f"the weights of model.init_from {folder}"
    )


def _load_fitting(model: nn.Module, state: dict, head: str, what: str) -> None:
    """Load every weight of ``state`` that fits ``model``; only the head (``head``) may be left out."""
    missing, _ = model.load_state_dict(_drop_mismatched(state, model), strict=False)
    missing = [k for k in missing if not k.startswith(head + ".")]
    if missing:
        raise ValueError(
            f"{what} do not fit the architecture: missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
        )


def _drop_mismatched(state: dict, model: nn.Module) -> dict:
    own = model.state_dict()
    return {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}


class CNNAdapter(ModelAdapter):
    """A torchvision classifier trained with cross-entropy on ImageNet-normalised tensors."""

    family = "cnn"

    def __init__(self, config: ModelConfig, num_classes: int = 2, *, _pretrained: bool | None = None):
        super().__init__(config, num_classes)
        if config.mode not in ("full", "linear_probe"):
            raise ValueError(f"CNN models support mode 'full' or 'linear_probe', not {config.mode!r}")
        pretrained = config.pretrained if _pretrained is None else _pretrained
        init = config.init_from if _pretrained is None else None  # a saved checkpoint holds every weight itself
        self._module = build_cnn(
            config.name,
            num_classes,
            pretrained=pretrained and not init,
            weights_path=config.weights_path if _pretrained is None and not init else None,
            output_stride=config.output_stride,
        )
        if init:
            init_from_checkpoint(self._module, config.name, init)
        # channels_last: on the CPU, PyTorch's convolutions (forward and backward) run 1.1-2x faster in it than in
        # the default layout at these small inputs (bench/predict_latency.py); saved weights are made contiguous.
        self._module.to(memory_format=torch.channels_last)
        self.head_name = last_linear(self._module)
        if config.mode == "linear_probe":
            for qualname, p in self._module.named_parameters():
                p.requires_grad = qualname.startswith(self.head_name + ".")
        self.input_size: int | None = None

    @property
    def module(self) -> nn.Module:
        return self._module

    def transform(
        self,
        train: bool,
        input_size: int,
        stain: str | None = None,
        color_jitter: float = 0.1,
        hed_jitter: float = 0.0,
    ) -> Callable[[Any], Any]:
        from trainer.data.transforms import build_transforms

        if input_size != self.input_size and input_size < 128:
            self._check_input_size(input_size)
        self.input_size = input_size
        return build_transforms(input_size, train=train, stain=stain, color_jitter=color_jitter, hed_jitter=hed_jitter)

    def _check_input_size(self, size: int) -> None:
        """Small inputs shrink to nothing in some architectures (AlexNet needs >= 63 px): say so up front."""
        was = self._module.training
        self._module.eval()
        try:
            with torch.no_grad():
                self._module(torch.zeros(1, 3, size, size))
        except RuntimeError as exc:
            raise ValueError(
                f"{self.config.name} cannot take {size} px inputs ({exc}); raise data.input_size"
            ) from None
        finally:
            self._module.train(was)

    def collate(self, samples: Sequence[Any], targets: Sequence[int]) -> dict[str, Any]:
        pixels = torch.stack(list(samples)).contiguous(memory_format=torch.channels_last)  # the module's layout
        return {"pixel_values": pixels, "labels": torch.as_tensor(list(targets), dtype=torch.long)}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        logits = self.forward_module(batch["pixel_values"])
        return F.cross_entropy(logits.float(), batch["labels"])

    def predict_proba(self, batch: dict[str, Any]) -> torch.Tensor:
        return torch.softmax(self.forward_module(batch["pixel_values"]).float(), dim=-1)

    @property
    def feature_description(self) -> str:
        return f"penultimate features: the input of the classifier head `{self.head_name}`"

    def logits_and_features(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits and the classifier head's input (penultimate features) of one forward pass."""
        with first_input(self._module.get_submodule(self.head_name)) as box:
            logits = self.forward_module(batch["pixel_values"])
        return logits.float(), box[0].flatten(1).float()

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        module = getattr(self._module, "module", self._module)
        state = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
        write_adapter_meta(
            directory,
            {
                "family": self.family,
                "num_classes": self.num_classes,
                "input_size": self.input_size,
                "model": dataclasses.asdict(self.config),
            },
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> CNNAdapter:
        directory = Path(directory)
        meta_path = directory / ADAPTER_FILE
        if not meta_path.is_file() or not (directory / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(
                f"not a CNN checkpoint folder (needs {ADAPTER_FILE} and {WEIGHTS_FILE}): {directory}"
            )
        meta = json.loads(meta_path.read_text())
        config = ModelConfig.from_dict(meta["model"], f"{meta_path}:model")
        adapter = cls(config, int(meta["num_classes"]), _pretrained=False)  # the file holds every weight
        # Compact exports (the app's demo models) store fp16 weights: compute in float32 on every device.
        state = {
            k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(directory / WEIGHTS_FILE)).items()
        }
        adapter._module.load_state_dict(state)
        adapter.input_size = meta.get("input_size")
        adapter._module.to(device).eval()
        return adapter

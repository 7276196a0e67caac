"""Class activation maps for the torchvision CNNs with the ``grad-cam`` package (pytorch-grad-cam), through its
public API only (a CAM object called on the input, ``cam.outputs`` for the logits of that same pass).

One forward pass gives both the prediction and the map: with no target given, grad-cam explains the predicted
class. A forward hook makes the target layer's output a leaf that requires grad, so the backward pass stops
there (no parameter gradients, nothing below the target layer), which keeps Grad-CAM close to the cost of a
plain prediction."""

from __future__ import annotations

import threading
from contextlib import nullcontext

import numpy as np
import torch
from PIL import Image
from torch import nn

from trainer.explain import CAM_METHODS, DEFAULT_METHOD
from trainer.explain.base import Explainer, Explanation
from trainer.models.base import first_input
from trainer.models.cnn import resnet_stride

# The last convolutional stage of each torchvision family (the layer the Grad-CAM papers use); any other
# architecture falls back to its last Conv2d.
_TARGET_LAYERS: tuple[tuple[str, str], ...] = (
    ("resnet", "layer4"),
    ("resnext", "layer4"),
    ("wide_resnet", "layer4"),
    ("vgg", "features"),
    ("alexnet", "features"),
    ("densenet", "features"),
    ("mobilenet", "features"),
    ("efficientnet", "features"),
    ("convnext", "features"),
    ("mnasnet", "layers"),
    ("regnet", "trunk_output"),
    ("shufflenet", "conv5"),
    ("squeezenet", "features"),
    ("googlenet", "inception5b"),
    ("inception", "Mixed_7c"),
)
MIN_MAP_SIDE = 4  # the coarsest CAM grid worth showing (issue 16: "a map of at least 4x4")
_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def target_layer(model: nn.Module, arch: str | None = None, input_size: int | None = None) -> nn.Module:
    """The layer whose activations the CAM weighs: by torchvision architecture name, else the last Conv2d.

    ResNets explain the last block of ``layer4`` when its map is at least 4x4 at ``input_size`` (224 px; 64 px
    with ``model.output_stride=16``), else that of ``layer3``: a 2x2 map is too coarse to show anything on a
    small patch, and explaining ``layer3`` costs a backward pass through all of ``layer4``."""
    arch = (arch or "").lower()
    for prefix, attr in _TARGET_LAYERS:
        if arch.startswith(prefix) and hasattr(model, attr):
            layer = getattr(model, attr)
            if isinstance(layer, nn.Sequential) and prefix in ("resnet", "resnext", "wide_resnet"):
                if input_size and _resnet_map_side(model, input_size) < MIN_MAP_SIDE and hasattr(model, "layer3"):
                    return model.layer3[-1]
                return layer[-1]
            if isinstance(layer, nn.Sequential) and prefix in ("vgg", "alexnet"):
                # The last ReLU of the convolutional features (before the final max-pool): finer maps.
                relus = [m for m in layer if isinstance(m, nn.ReLU)]
                return relus[-1] if relus else layer[-1]
            return layer
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{model.__class__.__name__}: no convolutional layer to explain with a CAM")
    return convs[-1]


def _resnet_map_side(model: nn.Module, input_size: int) -> int:
    """Side of a torchvision ResNet's ``layer4`` map at ``input_size`` (ceil: the convs pad)."""
    return -(-input_size // resnet_stride(model))


def _leaf_hook(module, inputs, output):
    # Cut the graph at the target layer: gradients flow from the logits down to here and no further.
    return output.detach().requires_grad_(True)


def _lock_for(module: nn.Module) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(id(module), threading.Lock())


def _crop_box(width: int, height: int) -> tuple[int, int, int]:
    """Where the model's view (Resize(shorter side) + CenterCrop) lies in the original image: (left, top, side)."""
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def to_image_grid(cam: np.ndarray, width: int, height: int) -> np.ndarray:
    """Map a square CAM of the centre-cropped model input back onto the original (width x height) image;
    the parts the model did not see get 0."""
    left, top, side = _crop_box(width, height)
    square = np.asarray(Image.fromarray(cam.astype(np.float32), mode="F").resize((side, side), Image.BILINEAR))
    full = np.zeros((height, width), dtype=np.float32)
    full[top : top + side, left : left + side] = np.clip(square, 0.0, 1.0)
    return full


def explain_cnn_many(
    adapter,
    images: list[Image.Image],
    *,
    method: str = DEFAULT_METHOD,
    target: int | None = None,
    input_size: int = 224,
    device: str | torch.device | None = None,
    layer: str | None = None,
    classes: list[str] | None = None,
    transform=None,
) -> list[Explanation]:
    """Predict ``images`` (RGB PIL) with a CNN adapter and explain class ``target`` of each (default: each image's
    own predicted class), in one forward and one backward pass (grad-cam takes a batch). The maps are the
    single-image ones: the CAM of one image depends only on its own activations and gradients. ``layer``: a
    module name (``"layer4"``, ``"features.28"``) instead of the per-architecture choice; ``classes``: the class
    names the descriptions use (else the class index); ``transform``: the image transform (default: the adapter's
    evaluation transform without stain normalisation)."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(CAM_METHODS)}")
    model = adapter.module
    device = device or next(model.parameters()).device
    tf = transform or adapter.transform(False, input_size)
    x = adapter.collate([tf(im) for im in images], [0] * len(images))["pixel_values"].to(device)
    if layer is not None:
        layer = model.get_submodule(layer)
        layer = layer[-1] if isinstance(layer, nn.Sequential) and len(layer) else layer
    else:
        layer = target_layer(model, getattr(adapter.config, "name", None), input_size)
    targets = None if target is None else [ClassifierOutputTarget(int(target))] * len(images)  # None: predicted
    head = model.get_submodule(adapter.head_name) if getattr(adapter, "head_name", None) else None
    with _lock_for(model):  # hooks live on the shared, cached module: one CAM at a time per model
        handle = layer.register_forward_hook(_leaf_hook)  # registered first, so grad-cam's hooks see the leaf
        try:
            with getattr(pytorch_grad_cam, CAM_METHODS[method])(model=model, target_layers=[layer]) as cam_obj:
                if method == "Score-CAM":
                    cam_obj.batch_size = 32  # ScoreCAM's documented knob: masked inputs per forward pass
                # The head's input in grad-cam's first (unmasked) pass: the OOD check's features (trainer.trust).
                with torch.enable_grad(), first_input(head) if head is not None else nullcontext([]) as box:
                    grayscale = cam_obj(input_tensor=x, targets=targets)
                logits = cam_obj.outputs  # the same pass's model output (grad-cam keeps it for this)
        finally:
            handle.remove()
    logits = logits.detach().float().cpu().numpy()
    features = box[0].detach().flatten(1).float().cpu().numpy() if box else [None] * len(images)
    out = []
    for im, g, lg, ft in zip(images, grayscale, logits, features, strict=True):
        t = int(lg.argmax()) if target is None else int(target)
        name = classes[t] if classes else str(t)
        out.append(Explanation(to_image_grid(g, *im.size), t, f"{method} for class '{name}'", lg, ft))
    return out


class CamExplainer(Explainer):
    """A CNN's explanation: a Grad-CAM family map (``method``) of class ``target`` (default: the predicted one)."""

    def explain_many(
        self,
        images: list[Image.Image],
        *,
        method: str = DEFAULT_METHOD,
        target: int | None = None,
        layer: str | None = None,
    ) -> list[Explanation]:
        from trainer.predict import eval_transform

        m = self.loaded
        return explain_cnn_many(
            m.adapter,
            images,
            method=method,
            target=target,
            input_size=m.input_size,
            device=getattr(m, "device", None),  # None: the module's own
            layer=layer,
            classes=m.classes,
            transform=eval_transform(m),  # the plain prediction's transform, stain normalisation included
        )

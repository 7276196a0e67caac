"""The model-randomisation sanity check of Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018):
cascading randomisation. A copy of the model has its layers' weights randomised one after another from the top
(the classifier first), keeping the earlier ones random; after each layer the map is computed again and compared
with the trained model's map by Spearman rank correlation (``scipy.stats.spearmanr``), per image. A map that
shows what the model learned must change once the weights it comes from are noise; a map that stays the same
shows the image, not the model (an edge detector does, whatever the weights: ``baselines.sobel``).

The layers (``cascade``), from the top: a CNN's top-level children that hold weights, last first (a torchvision
ResNet: fc, layer4, layer3, layer2, layer1, bn1, conv1); a VLM's output layer (``lm_head``; with tied embeddings
the input embeddings change with it), then each language-model block from the last, then each vision-encoder
block from the last (the connector and the embeddings of the patches are not listed: the attention map is read
in the language model).

Randomising a tensor replaces it with Gaussian noise of the tensor's own mean and standard deviation, so the
activations keep their scale (the paper re-initialises; a re-initialisation rule per layer type would differ
between the families, this one does not); a constant tensor (a norm's untouched ones) stays as it is.

Verdict (``report.SANE_MAX``): a method passes when the median correlation, once every listed layer is random,
is under 0.5. Adebayo et al. judge visually and by the correlation's fall; maps of random networks keep some of
the image's structure (their Fig. 2: Guided Backprop stays near its trained map), so demanding 0 would fail
methods that do depend on the weights, while 0.5 leaves at most a quarter of the rank variance shared
(rho squared) with the trained model's map; an edge detector keeps 1.0."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SEED = 0


@dataclass
class Sanity:
    """One method's cascading randomisation on some images."""

    method: str
    layers: list[str]  # randomised in this order, cumulatively
    spearman: list[list[float]]  # [layer][image]: rank correlation with the trained model's map

    @property
    def median(self) -> list[float]:
        """The median correlation over the images after each layer."""
        return [float(np.nanmedian(row)) if len(row) else float("nan") for row in self.spearman]

    @property
    def final(self) -> float:
        """The median correlation once every listed layer is random (the verdict's number)."""
        return self.median[-1] if self.spearman else float("nan")

    def to_dict(self) -> dict:
        return {"method": self.method, "layers": self.layers, "median": self.median, "final": self.final}


def cascade(model) -> list[tuple[str, object]]:
    """(name, module) of the layers to randomise, from the top (see the module's docstring)."""
    adapter = model.adapter
    if adapter.family == "vlm":
        return _vlm_cascade(adapter)
    root = adapter.module
    return [(n, m) for n, m in reversed(list(root.named_children())) if any(True for _ in m.parameters())]


def _vlm_cascade(adapter) -> list[tuple[str, object]]:
    from torch import nn

    base = adapter.model.get_base_model() if hasattr(adapter.model, "get_base_model") else adapter.model
    steps = [("lm_head", base.get_output_embeddings())]
    text, vision = [], []
    for name, mod in base.named_modules():
        if isinstance(mod, nn.ModuleList) and name.endswith("layers"):
            (vision if "vision" in name or "visual" in name else text).append((name, mod))
    for name, blocks in text + vision:
        steps += [(f"{name}.{i}", blocks[i]) for i in reversed(range(len(blocks)))]
    return steps


def randomise(module, generator) -> None:
    """Every parameter of ``module`` replaced by Gaussian noise of its own mean and standard deviation."""
    import torch

    with torch.no_grad():
        for p in module.parameters():
            if p.numel() < 2:
                continue
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float32)
            p.copy_((noise * p.float().std() + p.float().mean()).to(p.dtype))


def with_adapter(model, adapter):
    """``model`` (a Checkpoint, the app's loaded model: dataclasses) holding another adapter."""
    if dataclasses.is_dataclass(model):
        return dataclasses.replace(model, adapter=adapter)
    clone = copy.copy(model)
    clone.adapter = adapter
    return clone


def randomised_models(model, layers: int | None = None, seed: int = SEED):
    """(layer name, model) after randomising each layer of ``cascade`` in turn, cumulatively, on ONE copy of the
    model (the trained model is untouched); ``layers``: only the top ``layers`` of them."""
    import torch

    adapter = copy.deepcopy(model.adapter)
    adapter.prepared_module = None
    clone = with_adapter(model, adapter)
    generator = torch.Generator().manual_seed(seed)
    for name, module in cascade(clone)[:layers]:
        randomise(module, generator)
        yield name, clone


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two maps (0 when either is constant: nothing to rank)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def sanity_check(
    model,
    images: Sequence,
    maps: Callable[[object, list], list[np.ndarray]],
    *,
    method: str = "",
    trained: Sequence[np.ndarray] | None = None,
    layers: int | None = None,
    seed: int = SEED,
) -> Sanity:
    """The cascading randomisation of ``model`` for the map function ``maps(model, images) -> [heatmap]`` (the
    trained model's maps: ``trained``, else computed here)."""
    images = list(images)
    trained = list(trained) if trained is not None else maps(model, images)
    names, rows = [], []
    for name, randomised in randomised_models(model, layers, seed):
        names.append(name)
        rows.append([spearman(t, r) for t, r in zip(trained, maps(randomised, images), strict=True)])
    return Sanity(method, names, rows)

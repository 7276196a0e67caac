"""How faithful a map is to the model it explains: ROAD (Rong et al., ICML 2022, "A Consistent and Efficient
Evaluation Strategy for Attribution Methods") with pytorch-grad-cam's kept code (``pytorch_grad_cam.metrics.road``:
its ``NoisyLinearImputer`` and the ``RemoveMostRelevantFirst`` / ``RemoveLeastRelevantFirst`` perturbations that
``ROADMostRelevantFirst`` / ``ROADLeastRelevantFirst`` / ``ROADCombined`` apply).

The pixels a map marks most relevant are removed (filled in from their neighbours by noisy linear imputation, so
the model sees no sharp hole it could react to instead of the missing content) and the model's calibrated
probability of the explained class is measured again; likewise for the pixels it marks least relevant. A faithful
map's most relevant pixels matter: removing them drops the probability much more than removing the least relevant.

The perturbation is written on images, not on a tensor a CNN's ``model(x)`` takes: the image is brought to the
model's view (its evaluation geometry, ``Resize`` + ``CenterCrop`` at ``input_size``, in [0, 1]), perturbed there,
and scored through ``trainer.predict`` (``forward`` + the calibration of ``trainer.trust.assess``), the scoring
the app shows, so a CNN and a VLM (whose probabilities are its label-token log-likelihoods) are scored alike.

Choices made here (the kept classes leave them open):
- ranks, not values: the map is replaced by its pixels' ranks (ties broken at random with a fixed seed) before
  the kept perturbations threshold it at a percentile, so "the 20 %" is 20 % of the pixels even for a map with
  large flat areas (a Grad-CAM is 0 wherever the ReLU cuts; thresholding its values would remove nothing or
  everything);
- the imputation is in [0, 1] pixel units with the imputer's own noise (0.01), then rounded to 8 bits as the
  image the model receives;
- ``road_combined`` is ``ROADCombined``'s formula: the mean over the percentiles of (score after removing the
  least relevant - score after removing the most relevant) / 2, on the calibrated probability of the explained
  class; from -0.5 to 0.5, higher = more faithful, 0 = the map is no better than its inverse;
- the deletion / insertion curves (Petsiuk et al., RISE, 2018) come from the same perturbed images: deletion is
  the probability after removing the 0, 10, ..., 90 % most relevant pixels, insertion after keeping only the
  10, ..., 90, 100 % most relevant (the rest imputed); each AUC is the curve's mean (trapezoid over its x range).
  Lower deletion and higher insertion = more faithful."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
DEFAULT_FRACTION = 0.2
SEED = 0


@dataclass
class Faithfulness:
    """One map's faithfulness (ROAD), for the app's line under the map and ``trainer explain-eval``'s table."""

    method: str
    fraction: float  # e.g. 0.2: the share of pixels ``drop_most`` / ``drop_least`` remove
    p_before: float  # calibrated P(target class) of the intact image (the model's view of it), trainer.predict's
    drop_most: float  # P drop when the ``fraction`` most relevant pixels (by the map) are removed
    drop_least: float  # P drop when the ``fraction`` least relevant are removed
    road_combined: float  # ROADCombined over ``percentiles``: higher = more faithful (-0.5 .. 0.5)
    seconds: float  # this map's share of the scoring's wall time
    target_class: str = "malignant"  # the class whose probability is measured (the map's, else the predicted one)
    deletion_auc: float = float("nan")  # lower = more faithful
    insertion_auc: float = float("nan")  # higher = more faithful
    deletion: list[tuple[float, float]] = field(default_factory=list)  # (fraction removed, P)
    insertion: list[tuple[float, float]] = field(default_factory=list)  # (fraction kept, P)

    def sentence(self) -> str:
        """One line for the reader, e.g. "removing the 20 % the map marks drops P(malignant) by 0.41; removing
        the 20 % it leaves drops it by 0.03"."""
        pct = f"{100 * self.fraction:.0f} %"
        return (
            f"removing the {pct} the map marks {_change(self.drop_most)} P({self.target_class}) by "
            f"{abs(self.drop_most):.2f}; removing the {pct} it leaves {_change(self.drop_least)} it by "
            f"{abs(self.drop_least):.2f}"
        )

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _change(drop: float) -> str:
    return "raises" if drop < 0 else "drops"


def model_view(model, image: Image.Image):
    """The image as the model sees it: its evaluation geometry at ``input_size`` (shorter side resized, centre
    cropped), a (3, S, S) float tensor in [0, 1] (no normalisation: the perturbation is on the image)."""
    from trainer.data.images import to_rgb
    from trainer.data.transforms import build_transforms

    return build_transforms(model.input_size, train=False, normalize=False)(to_rgb(image))


def map_view(model, heatmap: np.ndarray) -> np.ndarray:
    """A map at the image's size (H, W) brought to the model's view (S, S), the image's own geometry."""
    import torch
    from torchvision import transforms as T

    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError(f"the map must be a 2-D (H, W) array, got shape {heatmap.shape}")
    size = model.input_size
    geometry = T.Compose([T.Resize(size, antialias=True), T.CenterCrop(size)])
    return geometry(torch.from_numpy(np.nan_to_num(heatmap))[None])[0].numpy()


def ranked(heatmap: np.ndarray, seed: int = SEED) -> np.ndarray:
    """The map's pixels replaced by their ranks in (0, 1] (ties broken at random, reproducibly): a percentile
    threshold then removes that share of the pixels whatever the map's flat areas."""
    flat = heatmap.ravel()
    tiebreak = np.random.default_rng(seed).random(flat.size)
    order = np.lexsort((tiebreak, flat))
    ranks = np.empty(flat.size, dtype=np.float32)
    ranks[order] = (np.arange(flat.size, dtype=np.float32) + 1) / flat.size
    return ranks.reshape(heatmap.shape)


def perturbed(view, rank_map: np.ndarray, percentiles: Sequence[int], seed: int = SEED) -> list:
    """The kept ROAD perturbations of one view: for each percentile p, the view with the (100 - p) % most
    relevant pixels imputed (``RemoveMostRelevantFirst(p)``), then, for each p, with the (100 - p) % least relevant
    imputed (``RemoveLeastRelevantFirst(p)``); 2 x len(percentiles) tensors in that order."""
    import torch
    from pytorch_grad_cam.metrics.perturbation_confidence import RemoveLeastRelevantFirst, RemoveMostRelevantFirst
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    mask = torch.from_numpy(rank_map)
    out = []
    with torch.random.fork_rng(devices=[]):  # the imputer's noise, reproducible, without touching the caller's RNG
        torch.manual_seed(seed)
        for remove in (RemoveMostRelevantFirst, RemoveLeastRelevantFirst):
            for p in percentiles:
                out.append(remove(p, NoisyLinearImputer())(view, mask).clamp(0.0, 1.0))
    return out


def to_image(tensor) -> Image.Image:
    """A (3, S, S) tensor in [0, 1] as the 8-bit RGB image the model receives."""
    arr = (tensor.permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def class_probabilities(model, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
    """(N, C) calibrated probabilities of ``images``: ``trainer.predict.forward`` and the checkpoint's
    temperature (``trainer.trust.assess``), the numbers ``trainer predict`` and the app show."""
    from trainer.predict import forward
    from trainer.trust.assess import assess

    logits, _ = forward(model, list(images), batch_size)
    return assess(logits, None, model.classes, getattr(model, "trust", None)).probs


def score_map(
    model,
    image: Image.Image,
    heatmap: np.ndarray,
    *,
    method: str = "",
    target: int | None = None,
    fraction: float = DEFAULT_FRACTION,
    percentiles: Sequence[int] = PERCENTILES,
) -> Faithfulness:
    """ROAD faithfulness of ``heatmap`` ((H, W) at ``image``'s size, e.g. ``Explanation.heatmap``) for ``model``
    (anything ``trainer.predict`` scores: a ``Checkpoint`` or the app's loaded model). ``target``: the class the
    map explains (default: the class predicted on the intact image)."""
    return score_maps(
        model, [image], [heatmap], methods=[method], targets=[target], fraction=fraction, percentiles=percentiles
    )[0]


def score_maps(
    model,
    images: Sequence[Image.Image],
    heatmaps: Sequence[np.ndarray],
    *,
    methods: Sequence[str] | str = "",
    targets: Sequence[int | None] | None = None,
    fraction: float = DEFAULT_FRACTION,
    percentiles: Sequence[int] = PERCENTILES,
    batch_size: int = 64,
    seed: int = SEED,
) -> list[Faithfulness]:
    """``score_map`` for many (image, map) pairs: every perturbed image of every map is scored in batches of
    ``batch_size`` (few forward passes). ``methods``: one name for all, or one per map."""
    if len(images) != len(heatmaps):
        raise ValueError(f"{len(images)} images but {len(heatmaps)} maps")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1 (exclusive), got {fraction}")
    if not images:
        return []
    n = len(images)
    methods = [methods] * n if isinstance(methods, str) else list(methods)
    targets = list(targets) if targets is not None else [None] * n
    if len(methods) != n or len(targets) != n:
        raise ValueError("methods and targets must give one entry per map")
    keep = round(100 * (1 - fraction))  # RemoveMostRelevantFirst(keep) removes the `fraction` most relevant
    percentiles = sorted({int(p) for p in percentiles} | {keep})
    if percentiles[0] <= 0 or percentiles[-1] >= 100:
        raise ValueError(f"percentiles must lie strictly between 0 and 100, got {percentiles}")

    t0 = time.perf_counter()
    views = [model_view(model, im) for im in images]
    batch = [to_image(v) for v in views]  # the intact views first, then each map's perturbed views
    for k, (view, heatmap) in enumerate(zip(views, heatmaps, strict=True)):
        batch += [to_image(t) for t in perturbed(view, ranked(map_view(model, heatmap), seed + k), percentiles, seed)]
    probs = class_probabilities(model, batch, batch_size)
    seconds = (time.perf_counter() - t0) / n

    out = []
    m = len(percentiles)
    for k in range(n):
        target = int(np.argmax(probs[k])) if targets[k] is None else int(targets[k])
        p0 = float(probs[k, target])
        rows = probs[n + 2 * m * k : n + 2 * m * (k + 1), target]
        morf, lerf = rows[:m], rows[m:]  # P after removing the (100 - p) % most / least relevant
        at = percentiles.index(keep)
        deletion = [(0.0, p0)] + sorted(((100 - p) / 100, float(v)) for p, v in zip(percentiles, morf, strict=True))
        insertion = sorted((p / 100, float(v)) for p, v in zip(percentiles, lerf, strict=True)) + [(1.0, p0)]
        out.append(
            Faithfulness(
                method=methods[k],
                fraction=fraction,
                p_before=p0,
                drop_most=p0 - float(morf[at]),
                drop_least=p0 - float(lerf[at]),
                road_combined=float(np.mean(lerf - morf) / 2),
                seconds=seconds,
                target_class=str(model.classes[target]),
                deletion_auc=auc(deletion),
                insertion_auc=auc(insertion),
                deletion=deletion,
                insertion=insertion,
            )
        )
    return out


def auc(curve: Sequence[tuple[float, float]]) -> float:
    """The mean of a curve of (x, y) points: its trapezoid area over its x range."""
    x, y = (np.asarray(v, dtype=np.float64) for v in zip(*curve, strict=True))
    span = x[-1] - x[0]
    return float(np.trapezoid(y, x) / span) if span > 0 else float(y.mean())

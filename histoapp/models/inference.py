"""Prediction with any loaded model (CNN or VLM), its explanation, and the timings the Predict tab shows: one
patch (``classify``, ``explain``) or several in one forward pass (``classify_many``, ``explain_many``: what the
app's batcher runs). Preprocessing and probabilities come from the model's own adapter (``transform``,
``collate``, ``predict_proba``), as in training and evaluation."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from trainer.data.records import malignant_columns


@dataclass
class Prediction:
    model: str
    classes: list[str]
    probs: list[float]
    label: str  # benign / malignant (an 8-class model's subtypes are summed)
    prob_malignant: float
    latency_ms: float  # prediction (+ explanation when asked) wall time
    heatmap: np.ndarray | None = None  # (H, W) in [0, 1] at the image's size
    explanation: str = ""  # what the heatmap shows
    answer: str | None = None  # the VLM's free-text answer
    extra: dict = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, float]:
        return dict(zip(self.classes, self.probs, strict=True))


def malignant_probability(probs: np.ndarray, classes: list[str]) -> float:
    """P(malignant): the malignant class, or the sum of the malignant subtypes (``malignant_columns``)."""
    return float(np.asarray(probs)[malignant_columns(classes)].sum())


def _batch(adapter, images: list[Image.Image], size: int, device):
    from trainer.engine.loop import to_device

    tf = adapter.transform(False, size)
    return to_device(adapter.collate([tf(im) for im in images], [0] * len(images)), device)


def predict_proba(loaded, image: Image.Image) -> np.ndarray:
    return predict_proba_many(loaded, [image])[0]


def predict_proba_many(loaded, images: list[Image.Image]) -> np.ndarray:
    """(N, classes) probabilities of ``images`` from one forward pass."""
    with torch.inference_mode():
        batch = _batch(loaded.adapter, list(images), loaded.input_size, loaded.device)
        return loaded.adapter.predict_proba(batch).detach().float().cpu().numpy()


def adapter_probs(t: torch.Tensor) -> np.ndarray:
    return t.detach().float()[0].cpu().numpy()


def classify(loaded, image: Image.Image) -> Prediction:
    """Probabilities only (no explanation), with their latency: the batch table's prediction."""
    t0 = time.perf_counter()
    return _finish(loaded, predict_proba(loaded, image), t0)


def classify_many(loaded, images: list[Image.Image]) -> list[Prediction]:
    """``classify`` for several patches in one forward pass; each one's latency is the batch's."""
    t0 = time.perf_counter()
    return [_finish(loaded, p, t0) for p in predict_proba_many(loaded, images)]


def explain_many(loaded, images: list[Image.Image], **options) -> list[Prediction]:
    """``explain`` for several patches, batched where the family's explainer can (``Explainer.explain_many``)."""
    from histoapp.explain.base import explainer_for

    t0 = time.perf_counter()
    exps = explainer_for(loaded).explain_many(list(images), **options)
    return [_finish(loaded, e.probs, t0, heatmap=e.heatmap, explanation=e.description) for e in exps]


def explain(loaded, image: Image.Image, **options) -> Prediction:
    """Probabilities and the model family's explanation (``histoapp.explain``), from one forward pass."""
    from histoapp.explain.base import explainer_for

    t0 = time.perf_counter()
    exp = explainer_for(loaded).explain(image, **options)
    return _finish(loaded, exp.probs, t0, heatmap=exp.heatmap, explanation=exp.description)


def _finish(loaded, probs: np.ndarray, t0: float, **kw) -> Prediction:
    classes = loaded.classes
    p_mal = malignant_probability(probs, classes)
    return Prediction(
        loaded.entry.name,
        classes,
        [float(p) for p in probs],
        "malignant" if p_mal >= 0.5 else "benign",
        p_mal,
        (time.perf_counter() - t0) * 1000.0,
        **kw,
    )


def predict_cnn(
    loaded, image: Image.Image, *, cam_method: str | None = "Grad-CAM", target: int | None = None
) -> Prediction:
    """Prediction and (unless ``cam_method`` is None) its CAM, from one forward pass."""
    if cam_method is None:
        return classify(loaded, image)
    return explain(loaded, image, method=cam_method, target=target)


def predict_vlm(loaded, image: Image.Image, *, attention: bool = True, answer: bool = True) -> Prediction:
    """Class probabilities, the label-token attention map (one pass) and the model's free-text answer."""
    pred = explain(loaded, image) if attention else classify(loaded, image)
    return add_answer(loaded, pred, image) if answer else pred


def add_answer(loaded, pred: Prediction, image: Image.Image) -> Prediction:
    """The VLM's free-text answer (greedy decoding) and its time, added to ``pred``."""
    t1 = time.perf_counter()
    with torch.no_grad():
        pred.answer = str(loaded.adapter.generate_answer(image))
    pred.extra["answer_ms"] = (time.perf_counter() - t1) * 1000.0
    return pred

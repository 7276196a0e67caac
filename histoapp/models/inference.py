"""Prediction with any loaded model (CNN or VLM), its explanation, and the timings the Predict tab shows: one
patch (``classify``, ``explain``) or several in one forward pass (``classify_many``, ``explain_many``: what the
app's batcher runs). Probabilities (calibrated), the OOD score and the abstention come from the trainer
(``trainer.predict``: the same code as ``trainer predict`` and ``trainer evaluate``), computed on the logits and
features of the pass that makes the prediction, the explanation's own pass included."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from trainer.data.records import malignant_columns

# Abstentions about the image itself (not the model's confidence): its heat map and label mean nothing.
IMAGE_REASONS = ("too_small", "no_tissue", "not_he", "noise", "ood")


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
    prob_malignant_raw: float | None = None  # before calibration
    ood_score: float | None = None
    ood: bool | None = None  # None: the checkpoint has no OOD reference
    ood_threshold: float | None = None
    abstain: str | None = None  # trainer.trust.abstain code; when set, ``label`` is not an answer
    abstain_reason: str | None = None  # shown instead of the label
    tta: dict | None = None  # spread of P(malignant) over 8 flips / rotations: mean, std, min, max, views
    notes: list[str] = field(default_factory=list)  # e.g. "no OOD reference"

    @property
    def scores(self) -> dict[str, float]:
        return dict(zip(self.classes, self.probs, strict=True))

    @property
    def abstained(self) -> bool:
        return self.abstain is not None

    @property
    def image_abstained(self) -> bool:
        """Abstained because of the image (not a tissue patch, unlike the training images), not of the answer."""
        return self.abstain in IMAGE_REASONS


def malignant_probability(probs: np.ndarray, classes: list[str]) -> float:
    """P(malignant): the malignant class, or the sum of the malignant subtypes (``malignant_columns``)."""
    return float(np.asarray(probs)[malignant_columns(classes)].sum())


def _batch(adapter, images: list[Image.Image], size: int, device):
    from trainer.engine import to_device

    tf = adapter.transform(False, size)
    return to_device(adapter.collate([tf(im) for im in images], [0] * len(images)), device)


def predict_proba(loaded, image: Image.Image) -> np.ndarray:
    return predict_proba_many(loaded, [image])[0]


def predict_proba_many(loaded, images: list[Image.Image]) -> np.ndarray:
    """(N, classes) the model's own probabilities of ``images`` from one forward pass (the benches' baseline)."""
    import torch

    with torch.inference_mode():
        batch = _batch(loaded.adapter, list(images), loaded.input_size, loaded.device)
        return loaded.adapter.predict_proba(batch).detach().float().cpu().numpy()


def adapter_probs(t) -> np.ndarray:
    return t.detach().float()[0].cpu().numpy()


def _prediction(loaded, pred, latency_ms: float, **kw) -> Prediction:
    """The app's ``Prediction`` of a ``trainer.predict.ImagePrediction``."""
    return Prediction(
        loaded.entry.name,
        list(pred.classes),
        list(pred.probs),
        pred.label,
        pred.prob_malignant,
        latency_ms,
        prob_malignant_raw=pred.prob_malignant_raw,
        ood_score=pred.ood_score,
        ood=pred.ood,
        ood_threshold=pred.ood_threshold,
        abstain=pred.abstain,
        abstain_reason=pred.abstain_reason,
        tta=pred.tta.to_dict() if pred.tta is not None else None,
        notes=list(pred.notes),
        **kw,
    )


def classify(loaded, image: Image.Image, *, tta: bool = False) -> Prediction:
    """Calibrated probabilities, OOD score and abstention (no explanation), with their latency; ``tta``: also the
    spread of P(malignant) over the 8 flips / rotations (``extra["tta_ms"]``: their cost)."""
    return classify_many(loaded, [image], tta=tta)[0]


def classify_many(loaded, images: list[Image.Image], *, tta: bool = False) -> list[Prediction]:
    """``classify`` for several patches in one forward pass; each one's latency is the batch's."""
    from trainer.predict import predict_images

    t0 = time.perf_counter()
    preds = predict_images(loaded, list(images), batch_size=max(1, len(images)), tta=tta)
    ms = (time.perf_counter() - t0) * 1000.0
    out = [_prediction(loaded, p, ms) for p in preds]
    if tta:
        for p in out:
            p.extra["tta_ms"] = ms
    return out


def explain_many(loaded, images: list[Image.Image], **options) -> list[Prediction]:
    """``explain`` for several patches, batched where the family's explainer can (``Explainer.explain_many``).
    The trust checks use the explanation pass's own logits and features; an explainer that gives none costs
    one more (batched) prediction pass."""
    from histoapp.explain.base import explainer_for
    from trainer.predict import judge

    t0 = time.perf_counter()
    images = list(images)
    exps = explainer_for(loaded).explain_many(images, **options)
    ms = (time.perf_counter() - t0) * 1000.0
    if all(e.logits is not None and e.features is not None for e in exps):
        preds = judge(loaded, images, np.stack([e.logits for e in exps]), np.stack([e.features for e in exps]))
    else:
        from trainer.predict import predict_images

        preds = predict_images(loaded, images)
    return [
        _prediction(loaded, p, ms, heatmap=e.heatmap, explanation=e.description)
        for p, e in zip(preds, exps, strict=True)
    ]


def explain(loaded, image: Image.Image, **options) -> Prediction:
    """Probabilities, trust checks and the model family's explanation (``histoapp.explain``), from one pass."""
    return explain_many(loaded, [image], **options)[0]


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
    import torch

    t1 = time.perf_counter()
    with torch.no_grad():
        pred.answer = str(loaded.adapter.generate_answer(image))
    pred.extra["answer_ms"] = (time.perf_counter() - t1) * 1000.0
    return pred

"""Single-patch and batch prediction with any loaded model (CNN or VLM), its explanation, and the timings the
Predict tab shows. Probabilities, the OOD score and the abstention come from the trainer's prediction
(``trainer.predict.predict_images``: calibrated, with the trust checks), as in ``trainer predict`` and
``trainer evaluate``; the explanation comes from the model family's explainer (``histoapp.explain``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from trainer.data.records import malignant_columns

# Abstentions about the image itself (not the model's confidence): its heat map and label mean nothing.
IMAGE_REASONS = ("too_small", "no_tissue", "not_he", "ood")


@dataclass
class Prediction:
    model: str
    classes: list[str]
    probs: list[float]  # calibrated when the checkpoint has a temperature
    label: str  # benign / malignant (an 8-class model's subtypes are summed); not an answer when abstaining
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
    abstain: str | None = None  # trainer.trust.abstain code
    abstain_reason: str | None = None  # shown instead of the label
    tta: dict | None = None  # spread of P(malignant) over 8 flips / rotations: mean, std, min, max
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


def _batch(adapter, image: Image.Image, size: int, device):
    from trainer.engine.loop import to_device

    return to_device(adapter.collate([adapter.transform(False, size)(image)], [0]), device)


def predict_proba(loaded, image: Image.Image) -> np.ndarray:
    """The model's own probabilities of one patch (a plain forward pass: the benches' baseline)."""
    import torch

    with torch.inference_mode():
        return adapter_probs(
            loaded.adapter.predict_proba(_batch(loaded.adapter, image, loaded.input_size, loaded.device))
        )


def adapter_probs(t) -> np.ndarray:
    return t.detach().float()[0].cpu().numpy()


def _from_trainer(loaded, pred) -> Prediction:
    return Prediction(
        loaded.entry.name,
        list(pred.classes),
        list(pred.probs),
        pred.label,
        pred.prob_malignant,
        pred.latency_ms,
        prob_malignant_raw=pred.prob_malignant_raw,
        ood_score=pred.ood_score,
        ood=pred.ood,
        ood_threshold=pred.ood_threshold,
        abstain=pred.abstain,
        abstain_reason=pred.abstain_reason,
        tta=pred.tta.to_dict() if pred.tta is not None else None,
        notes=list(pred.notes),
    )


def classify_many(loaded, images: list, *, tta: bool = False, batch_size: int = 32) -> list[Prediction]:
    """Calibrated probabilities, OOD score and abstention for every patch, in batches: the batch table."""
    from trainer.predict import predict_images

    return [_from_trainer(loaded, p) for p in predict_images(loaded, images, batch_size=batch_size, tta=tta)]


def classify(loaded, image: Image.Image, *, tta: bool = False) -> Prediction:
    """One patch (no explanation), with its latency; ``tta``: also the spread over 8 flips / rotations."""
    t0 = time.perf_counter()
    pred = classify_many(loaded, [image], tta=tta)[0]
    pred.latency_ms = (time.perf_counter() - t0) * 1000.0
    if tta:
        pred.extra["tta_ms"] = pred.latency_ms
    return pred


def explain(loaded, image: Image.Image, *, base: Prediction | None = None, **options) -> Prediction:
    """``base`` (the patch's prediction, made here when not given) with the model family's explanation
    (``histoapp.explain``). ``latency_ms`` is the explanation pass's own time (its forward pass included)."""
    from histoapp.explain.base import explainer_for

    base = base if base is not None else classify(loaded, image)
    t0 = time.perf_counter()
    exp = explainer_for(loaded).explain(image, **options)
    return replace(
        base,
        latency_ms=(time.perf_counter() - t0) * 1000.0,
        heatmap=exp.heatmap,
        explanation=exp.description,
        extra=dict(base.extra),
    )


def predict_cnn(
    loaded,
    image: Image.Image,
    *,
    cam_method: str | None = "Grad-CAM",
    target: int | None = None,
    base: Prediction | None = None,
) -> Prediction:
    """Prediction and (unless ``cam_method`` is None) its CAM."""
    if cam_method is None:
        return base if base is not None else classify(loaded, image)
    return explain(loaded, image, base=base, method=cam_method, target=target)


def predict_vlm(
    loaded, image: Image.Image, *, attention: bool = True, answer: bool = True, base: Prediction | None = None
) -> Prediction:
    """Class probabilities, the label-token attention map and the model's free-text answer."""
    import torch

    if not attention:
        base = base if base is not None else classify(loaded, image)
    pred = explain(loaded, image, base=base) if attention else base
    if answer:
        t1 = time.perf_counter()
        with torch.no_grad():
            pred.answer = str(loaded.adapter.generate_answer(image))
        pred.extra["answer_ms"] = (time.perf_counter() - t1) * 1000.0
    return pred

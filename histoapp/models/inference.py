"""Prediction with any loaded model (CNN or VLM), with or without its explanation, and the timings the Predict tab
shows; always a batch of patches in one forward pass (what the app's batcher runs). The result is the trainer's
``trainer.predict.Prediction`` (calibrated probabilities, OOD score, abstention: the same code as ``trainer
predict`` and ``trainer evaluate``), named after the model, timed over the whole call, and, when explained,
holding the family's ``Explanation`` of the very pass its trust checks were judged on."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from trainer.predict import Prediction


def classify_many(loaded, images: list[Image.Image], *, tta: bool = False) -> list[Prediction]:
    """Calibrated probabilities, OOD score and abstention of each patch (no explanation), from one forward pass;
    ``tta``: also the spread of P(malignant) over each patch's 8 flips / rotations (``extra["tta_ms"]``: their
    cost)."""
    from trainer.predict import predict_images

    t0 = time.perf_counter()
    preds = predict_images(loaded, list(images), batch_size=max(1, len(images)), tta=tta)
    _stamp(loaded, preds, t0)
    if tta:
        for p in preds:
            p.extra["tta_ms"] = p.latency_ms
    return preds


def explain_many(loaded, images: list[Image.Image], **options) -> list[Prediction]:
    """Predictions with the model family's explanation (``Explainer.explain_many``: one batched pass where the
    family can; ``options`` are the family's own). The trust checks use the explanation pass's own logits and
    features; an explainer that gives no features costs one more (batched) prediction pass."""
    from trainer.explain.base import explainer_for
    from trainer.predict import judge, predict_images

    t0 = time.perf_counter()
    images = list(images)
    exps = explainer_for(loaded).explain_many(images, **options)
    if all(e.features is not None for e in exps):
        preds = judge(loaded, images, np.stack([e.logits for e in exps]), np.stack([e.features for e in exps]))
    else:
        preds = predict_images(loaded, images)
    for p, e in zip(preds, exps, strict=True):
        p.explanation = e
    return _stamp(loaded, preds, t0)


def _stamp(loaded, preds: list[Prediction], t0: float) -> list[Prediction]:
    """The model's name, and the call's wall time as each one's latency (what the tab shows)."""
    ms = (time.perf_counter() - t0) * 1000.0
    for p in preds:
        p.model, p.latency_ms = loaded.entry.name, ms
    return preds


def add_answer(loaded, pred: Prediction, image: Image.Image) -> Prediction:
    """The VLM's free-text answer (greedy decoding) and its time, added to ``pred``."""
    import torch

    t1 = time.perf_counter()
    with torch.no_grad():
        pred.answer = str(loaded.adapter.generate_answer(image))
    pred.extra["answer_ms"] = (time.perf_counter() - t1) * 1000.0
    return pred

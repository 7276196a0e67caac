"""Prediction with the trust checks, batched: ``python -m trainer predict``, ``trainer evaluate``, the app's
Predict tab and API, and the benches all predict here.

Each image gets, from one forward pass per batch (``ModelAdapter.logits_and_features``): its probabilities
(calibrated with the checkpoint's temperature), P(malignant), label, OOD score and flag, the image checks
(``trainer.trust.tissue``) and the abstention (``trainer.trust.abstain``: the reason, or None). With ``tta`` the
eight flips / rotations of each image are predicted in the same batch and give the spread of P(malignant).

``model`` is anything with ``adapter``, ``classes``, ``input_size``, ``meta`` and ``trust``: a
``trainer.models.Checkpoint`` or the app's loaded model."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.config import TrustConfig
from trainer.data.images import to_rgb
from trainer.trust.abstain import NO_REFERENCE
from trainer.trust.tissue import ImageChecks, check_image
from trainer.trust.tta import N_VIEWS, Spread, views

# Columns of ``trainer predict --csv`` before the per-class probabilities.
CSV_COLUMNS = (
    "path",
    "error",
    "label",
    "prob_malignant",
    "prob_malignant_raw",
    "ood_score",
    "ood",
    "abstain",
    "abstain_reason",
    "true_label",
    "width",
    "height",
    "tissue_fraction",
    "he_fraction",
    "tta_mean",
    "tta_std",
)


@dataclass
class Prediction:
    """One image's prediction with its trust verdict: the one result of ``trainer predict``, ``trainer evaluate``,
    the app's Predict tab and API (which add the model's name, the explanation of the same pass and a VLM's
    free-text answer) and the benches."""

    classes: list[str]
    probs: list[float]  # calibrated (the checkpoint's temperature; the model's own without a trust reference)
    probs_raw: list[float]
    prob_malignant: float  # calibrated
    prob_malignant_raw: float
    label: str  # the model's answer, benign / malignant: not to be shown as an answer when ``abstain`` is set
    ood_score: float | None
    ood: bool | None  # None: no OOD reference
    ood_threshold: float | None
    abstain: str | None  # a code of trainer.trust.abstain.CODES, or None
    abstain_reason: str | None  # the sentence to show instead of the label
    checks: ImageChecks
    tta: Spread | None = None  # spread of P(malignant) over the 8 flips / rotations (``tta=True``)
    # Wall time: this image's share of its batch's; the app's calls set their whole call's (what the tab shows).
    latency_ms: float = 0.0
    notes: list[str] = field(default_factory=list)  # e.g. "no OOD reference"
    model: str = ""  # the model's name, where the caller gives it (the app's registry entry)
    # trainer.explain.base.Explanation of the pass that made this prediction (the app's explained calls), else
    # None; typed loosely, so this module does not import the explanation stack.
    explanation: Any = None
    answer: str | None = None  # a VLM's free-text answer (the app asks for it)
    extra: dict[str, float] = field(default_factory=dict)  # the app's further passes' times: tta_ms, answer_ms

    @property
    def scores(self) -> dict[str, float]:
        return dict(zip(self.classes, self.probs, strict=True))

    @property
    def abstained(self) -> bool:
        """The model gives no answer (``abstain_reason`` says why): ``label`` is not to be shown as one."""
        return self.abstain is not None

    def to_dict(self) -> dict:
        """The JSON-ready fields (``trainer predict``'s line, the app's API)."""
        return {
            "label": self.label,
            "prob_malignant": self.prob_malignant,
            "prob_malignant_raw": self.prob_malignant_raw,
            "probs": self.scores,
            "ood_score": self.ood_score,
            "ood": self.ood,
            "ood_threshold": self.ood_threshold,
            "abstain": self.abstain,
            "abstain_reason": self.abstain_reason,
            "checks": self.checks.to_dict(),
            "tta": self.tta.to_dict() if self.tta is not None else None,
            "notes": list(self.notes),
        }


_TRANSFORMS: dict[tuple, object] = {}  # (family class, input size, stain) -> evaluation transform


def eval_transform(model):
    """The evaluation transform, built once per (model family, input size, stain): it depends on nothing else,
    and building it per call would cost a few percent of a small CNN's prediction. Explanations use it too, so a
    stain-normalised model is explained on the image it classifies."""
    stain = (model.meta or {}).get("stain_normalization")
    key = (type(model.adapter).__qualname__, model.input_size, stain)
    if key not in _TRANSFORMS:
        kwargs = {"stain": stain} if stain else {}
        _TRANSFORMS[key] = model.adapter.transform(False, model.input_size, **kwargs)
    return _TRANSFORMS[key]


def _device(model):
    dev = getattr(model, "device", None)
    if dev is not None:
        return dev
    return next(model.adapter.module.parameters()).device


def forward(model, images: Sequence, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, C), features (N, D)) of PIL images (any mode), in batches of ``batch_size``."""
    import torch

    from trainer.engine import to_device

    adapter, tf, device = model.adapter, eval_transform(model), _device(model)
    logits, features = [], []
    if adapter.module.training:  # eval() walks every submodule: half a millisecond per call when not needed
        adapter.module.eval()
    with torch.no_grad():
        for start in range(0, len(images), max(1, batch_size)):
            chunk = images[start : start + batch_size]
            batch = to_device(adapter.collate([tf(to_rgb(im)) for im in chunk], [0] * len(chunk)), device)
            lg, ft = adapter.logits_and_features(batch)
            logits.append(lg.float().cpu().numpy())
            features.append(ft.float().cpu().numpy())
    if not logits:
        return np.zeros((0, len(model.classes)), dtype=np.float32), np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(logits), np.concatenate(features)


def predict_images(
    model,
    images: Sequence,
    *,
    batch_size: int = 32,
    tta: bool = False,
    config: TrustConfig | None = None,
    checks: Sequence[ImageChecks] | None = None,
) -> list[Prediction]:
    """One ``Prediction`` per PIL image. ``config`` overrides the checkpoint's abstention bounds;
    ``checks``: image checks already made (else made here)."""
    t0 = time.perf_counter()
    images = [to_rgb(im) for im in images]  # what the checks judge is what the model sees
    if not images:
        return []
    inputs = [v for im in images for v in views(im)] if tta else images
    logits, features = forward(model, inputs, batch_size * (N_VIEWS if tta else 1))
    spreads = None
    if tta:
        from trainer.trust.assess import assess

        every = assess(logits, None, model.classes, getattr(model, "trust", None), None, config or _config(model))
        spreads = [Spread.of(row) for row in every.p_malignant.reshape(len(images), N_VIEWS)]
        logits, features = logits[::N_VIEWS], features[::N_VIEWS]  # the first view of each image is the image
    out = judge(model, images, logits, features, config=config, checks=checks, spreads=spreads)
    per_image_ms = (time.perf_counter() - t0) * 1000.0 / len(images)
    for p in out:
        p.latency_ms = per_image_ms
    return out


def _config(model) -> TrustConfig:
    reference = getattr(model, "trust", None)
    return reference.config if reference is not None else TrustConfig()


def judge(
    model,
    images: Sequence,
    logits: np.ndarray,
    features: np.ndarray | None,
    *,
    config: TrustConfig | None = None,
    checks: Sequence[ImageChecks] | None = None,
    spreads: Sequence[Spread] | None = None,
) -> list[Prediction]:
    """The predictions of ``images`` from their pass's ``logits`` and ``features`` (this module's ``forward``, or
    an explanation's pass): calibration, OOD score, image checks and the abstention rule."""
    from trainer.trust.assess import assess

    reference = getattr(model, "trust", None)
    cfg = config or _config(model)
    if checks is None:
        checks = [check_image(im, cfg.tissue_saturation, cfg.max_fit_residual) for im in images]
    judged = assess(logits, features, model.classes, reference, checks, cfg)
    notes = [] if reference is not None and reference.ood is not None else [NO_REFERENCE]
    if reference is None:
        notes.append("uncalibrated (no temperature)")
    out = []
    for i in range(len(images)):
        why = judged.abstentions[i]
        out.append(
            Prediction(
                classes=list(model.classes),
                probs=[float(v) for v in judged.probs[i]],
                probs_raw=[float(v) for v in judged.probs_raw[i]],
                prob_malignant=float(judged.p_malignant[i]),
                prob_malignant_raw=float(judged.p_malignant_raw[i]),
                label="malignant" if judged.p_malignant[i] >= 0.5 else "benign",
                ood_score=float(judged.ood_score[i]) if judged.ood_score is not None else None,
                ood=judged.ood[i],
                ood_threshold=judged.ood_threshold,
                abstain=why.code if why else None,
                abstain_reason=why.message if why else None,
                checks=checks[i],
                tta=spreads[i] if spreads else None,
                notes=list(notes),
            )
        )
    return out


# --- files, folders, manifests -----------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """One image to predict, or one entry that cannot be (``error``)."""

    path: str
    error: str | None = None
    label: int | None = None  # the true label when a manifest gives one


def expand_inputs(paths: Iterable[str | Path]) -> list[Input]:
    """Files as given; a folder's images (its ``manifest.csv`` when it has one); a ``.csv`` manifest's images
    (the data layer's format, ``trainer.data.sources.index_csv``). What cannot be read becomes an ``Input``
    with its error, never an exception."""
    from trainer.data.index import IndexReport, iter_image_files, triage
    from trainer.data.sources import find_manifest

    out: list[Input] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            out.append(Input(str(path), "file not found"))
        elif path.is_file() and path.suffix.lower() != ".csv":
            out.append(Input(str(path)))
        elif find_manifest(path) is not None:
            out.extend(_manifest_inputs(path))
        elif path.is_dir():
            report = IndexReport(str(path), "folder")
            for f in iter_image_files(path):
                before = len(report.problems)
                if triage(f, report):
                    out.append(Input(str(f)))
                elif len(report.problems) > before:
                    out.append(Input(str(f), report.problems[-1].detail))
        else:
            out.append(Input(str(path), "not an image, a folder or a CSV manifest"))
    return out


def _manifest_inputs(path: Path) -> list[Input]:
    from trainer.data.sources import index_csv

    try:
        report = index_csv(path, verify="none")
    except (FileNotFoundError, ValueError) as exc:
        return [Input(str(path), str(exc))]
    out = [Input(r.path, None, r.label) for r in report.records]
    for p in report.problems:
        if p.kind.startswith("duplicate") or p.kind.startswith("patient_"):
            continue  # facts about the dataset, not about whether an image can be predicted
        out.append(Input(p.path, p.detail))
    return out


def _load(inp: Input, cfg: TrustConfig):
    from trainer.data.images import ImageError, load_rgb

    if inp.error:
        return None, None, inp.error
    try:
        image = load_rgb(inp.path)
    except ImageError as exc:
        return None, None, exc.reason
    return image, check_image(image, cfg.tissue_saturation, cfg.max_fit_residual), None


def predict_files(
    model,
    inputs: Sequence[Input],
    *,
    batch_size: int = 32,
    tta: bool = False,
    config: TrustConfig | None = None,
    workers: int = 2,
) -> Iterator[tuple[Input, Prediction | None, str | None]]:
    """(input, prediction or None, error or None) per input, in order; images are decoded in ``workers``
    threads, ``batch_size`` at a time."""
    reference = getattr(model, "trust", None)
    cfg = config or (reference.config if reference is not None else TrustConfig())
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(inputs), max(1, batch_size)):
            chunk = inputs[start : start + batch_size]
            loaded = list(pool.map(lambda i: _load(i, cfg), chunk))
            good = [k for k, (im, _, err) in enumerate(loaded) if err is None]
            preds = {}
            if good:
                results = predict_images(
                    model,
                    [loaded[k][0] for k in good],
                    batch_size=batch_size,
                    tta=tta,
                    config=cfg,
                    checks=[loaded[k][1] for k in good],
                )
                preds = dict(zip(good, results, strict=True))
            for k, inp in enumerate(chunk):
                yield inp, preds.get(k), loaded[k][2]


def row(inp: Input, pred: Prediction | None, error: str | None) -> dict:
    """One output line of ``trainer predict``: the prediction's fields, or the error."""
    from trainer.data.records import LABELS

    base = {"path": inp.path, "error": error}
    if inp.label is not None:
        base["true_label"] = LABELS[inp.label]
    if pred is None:
        return base
    return {**base, **pred.to_dict()}


def write_rows(rows: Iterable[dict], fh, *, as_csv: bool = False, classes: Sequence[str] = ()) -> int:
    """Write rows as JSON lines, or CSV (``CSV_COLUMNS`` + ``prob_<class>``); returns how many."""
    n = 0
    if not as_csv:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            n += 1
        return n
    probs = [f"prob_{c}" for c in classes]
    w = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS) + probs, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        flat = {**r}
        for k, v in (r.get("checks") or {}).items():
            flat[k] = v
        for k in ("mean", "std"):
            flat[f"tta_{k}"] = (r.get("tta") or {}).get(k)
        for c, v in (r.get("probs") or {}).items():
            flat[f"prob_{c}"] = v
        w.writerow({k: ("" if v is None else v) for k, v in flat.items()})
        fh.flush()
        n += 1
    return n

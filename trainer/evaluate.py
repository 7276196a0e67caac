"""Evaluate a saved checkpoint on another dataset (e.g. a BreakHis-trained model on BACH: cross-dataset
generalisation): predictions + metrics, written beside each other, with the share of images flagged OOD and the
metrics on the images kept."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from trainer.data.stain import check_method as check_stain_method
from trainer.metrics import classification_metrics
from trainer.models import load_checkpoint as resolve_checkpoint
from trainer.models.base import ModelAdapter
from trainer.rundir import BEST_DIR, EVAL_PREFIX, FOLD_METRICS, PREDICTIONS_FILE, write_json_atomic
from trainer.trust.reference import describe


def load_checkpoint(directory: str | Path, device: str | None = None) -> tuple[ModelAdapter, dict]:
    """(adapter, engine metadata) of a checkpoint folder: ``trainer.models.load_checkpoint`` in the shape the
    tests and scripts use."""
    ckpt = resolve_checkpoint(directory, device)
    return ckpt.adapter, ckpt.meta


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_root: str | Path | list[str | Path],
    *,
    source: str = "auto",
    magnification: str | None = None,
    out_dir: str | Path | None = None,
    batch_size: int = 32,
    input_size: int | None = None,
    num_workers: int = 0,
    progress: bool = True,
    patients: list[str] | None = None,
    stain_normalization: str | None = None,
) -> dict:
    """Predict every image of ``data_root`` (any source ``index_dataset`` reads: BreakHis, BACH, IDC, class
    folders, a folder with a ``manifest.csv``/``MANIFEST.csv``) with the checkpoint (``trainer.predict``: calibrated
    probabilities, OOD score, abstention); write ``predictions.csv`` and ``metrics.json`` to ``out_dir`` (default:
    ``<checkpoint>/../eval-<dataset folder name>``). Metrics are benign vs malignant (P(malignant) sums the
    malignant subtypes of an 8-class model), on every image and on the images kept: those not flagged OOD
    (``metrics_in_distribution``) and those the model answers (``metrics_answered``); problem images (unreadable,
    ``too_small`` ...) are skipped and counted. ``patients``: only these patients' images (e.g. one fold's test
    patients, from a run's ``splits.json``). Several ``data_root`` folders are indexed as one dataset
    (``trainer.data.roots``). ``stain_normalization``: "macenko" / "reinhard" normalise every image to the bundled
    reference before the model sees it, "none" turns off the model's own; default (None): as the model was trained
    (the cross-dataset test with stain normalisation on and off)."""
    import dataclasses

    from trainer.data.roots import index_roots
    from trainer.metrics import expected_calibration_error
    from trainer.predict import Input, predict_files
    from trainer.runfiles import write_predictions

    checkpoint = Path(checkpoint)
    ckpt = resolve_checkpoint(checkpoint)
    meta, classes = ckpt.meta, ckpt.classes
    roots = [data_root] if isinstance(data_root, (str, Path)) else list(data_root)
    where = " + ".join(map(str, roots))
    report = index_roots(roots, source, verify=True)
    records = [r for r in report.records if magnification in (None, "all") or r.magnification == magnification]
    if patients:
        wanted = set(patients)
        unknown = sorted(wanted - {r.patient_id for r in report.records})
        if unknown:
            raise ValueError(f"{where}: no images of patient(s) {', '.join(unknown)}")
        records = [r for r in records if r.patient_id in wanted]
    if not records:
        raise ValueError(f"no usable images in {where}" + (f" at {magnification}" if magnification else ""))
    size = input_size or ckpt.input_size
    stain = meta.get("stain_normalization") if stain_normalization is None else stain_normalization
    stain = None if stain in (None, "none") else check_stain_method(stain)
    model = dataclasses.replace(ckpt, input_size=size, meta={**meta, "stain_normalization": stain})
    inputs = [Input(r.path, None, r.label) for r in records]
    results = predict_files(model, inputs, batch_size=batch_size, workers=max(2, num_workers))
    kept = [(r, pred) for r, (_, pred, _) in zip(records, _progress(results, len(inputs), progress), strict=True)]
    failed = [r for r, pred in kept if pred is None]
    kept = [(r, pred) for r, pred in kept if pred is not None]
    recs = [r for r, _ in kept]
    preds = [p for _, p in kept]
    y = np.array([r.label for r in recs], dtype=int)
    pids = [r.patient_id for r in recs]
    probs = np.array([p.probs for p in preds], dtype=np.float64).reshape(len(preds), len(classes))
    p_mal = np.array([p.prob_malignant for p in preds])
    metrics = classification_metrics(y, p_mal, pids)
    raw = np.array([p.prob_malignant_raw for p in preds])
    metrics["ece_uncalibrated"] = expected_calibration_error(y, raw) if len(y) else None
    flagged = np.array([bool(p.ood) for p in preds], dtype=bool)
    answered = np.array([p.abstain is None for p in preds], dtype=bool)
    reasons = Counter(p.abstain for p in preds if p.abstain)

    def subset(mask):
        return classification_metrics(y[mask], p_mal[mask], [pid for pid, m in zip(pids, mask, strict=True) if m])

    from trainer.context import RADIUS, context_of_records

    smooth = context_of_records(recs, p_mal)  # per-patch data cut from slides (IDC): each patch with its neighbours
    name = "+".join(Path(r).resolve().name for r in roots)
    out = (
        Path(out_dir)
        if out_dir
        else (checkpoint if checkpoint.name != BEST_DIR else checkpoint.parent) / f"{EVAL_PREFIX}{name}"
    )
    write_predictions(
        out / PREDICTIONS_FILE,
        recs,
        y if len(classes) == 2 else np.array([-1] * len(recs)),
        probs,
        classes,
        magnification or "all",
        int(meta.get("fold", -1)),
        extra={
            "prob_malignant_raw": [p.prob_malignant_raw for p in preds],
            "ood_score": [p.ood_score for p in preds],
            "ood": [p.ood for p in preds],
            "abstain": [p.abstain or "" for p in preds],
        },
    )
    n = len(recs)
    result = {
        "checkpoint": str(checkpoint),
        "data": where,
        "source": report.source,
        "magnification": magnification or "all",
        "n": n,
        "patients": len({r.patient_id for r in recs}),
        "label_level": report.label_level,
        "problems": len(report.problems) + len(failed),
        "input_size": size,
        "stain_normalization": stain,
        "trained_on": meta,
        "metrics": metrics,
        "trust": {
            "reference": describe(ckpt.trust),
            **(ckpt.trust.summary() if ckpt.trust is not None else {}),
            "ood_share": float(flagged.mean()) if n and ckpt.trust is not None and ckpt.trust.ood else None,
            "abstain_share": float(1 - answered.mean()) if n else None,
            "abstain_by_reason": {k: v / n for k, v in sorted(reasons.items())},
            "n_in_distribution": int((~flagged).sum()),
            "n_answered": int(answered.sum()),
        },
        "metrics_in_distribution": subset(~flagged),
        "metrics_answered": subset(answered),
        # Every image, each scored with its 3x3 slide neighbourhood (trainer.context); None without coordinates.
        "metrics_context": None if smooth is None else {"radius": RADIUS, **classification_metrics(y, smooth, pids)},
    }
    write_json_atomic(out / FOLD_METRICS, result)
    return {**result, "out_dir": str(out)}


def _progress(items, total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc="evaluate", disable=not enabled, leave=False, mininterval=1.0)

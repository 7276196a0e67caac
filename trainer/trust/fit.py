"""Fitting a checkpoint's trust reference at the end of training (``trainer.fold.fit_trust``) or later for an
existing checkpoint (``trainer calibrate``): one pass over (a sample of) the training images with the evaluation
transform gives the OOD reference's class means and covariance; one pass over the validation images gives the
OOD threshold (a high quantile of their scores) and the temperature (their logits)."""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path

import numpy as np

from trainer.config import TrustConfig
from trainer.trust.calibration import Calibration
from trainer.trust.ood import MahalanobisOOD
from trainer.trust.reference import TrustReference


def reference_dataset(train_ds, transform, limit: int, seed: int = 0):
    """The training images seen through the evaluation ``transform`` (no augmentation), at most ``limit`` of them
    drawn with ``seed``. A shallow copy of the training dataset: it shares its decoded-image cache."""
    from torch.utils.data import Subset

    view = copy.copy(train_ds)
    view.transform = transform
    n = len(view)
    if limit <= 0 or n <= limit:
        return view
    return Subset(view, sorted(random.Random(seed).sample(range(n), limit)))


def fit_reference(
    adapter,
    reference_ds,
    val_ds,
    config: TrustConfig,
    *,
    batch_size: int = 32,
    accelerator=None,
    num_workers: int = 0,
    progress: bool = False,
    desc: str = "trust",
) -> TrustReference:
    """The trust reference of ``adapter`` from datasets built with the evaluation transform: ``reference_ds``
    (training images) and ``val_ds`` (validation images; may be empty: then the threshold comes from the
    training images' scores and the temperature stays 1)."""
    from trainer.engine import make_loader, predict_outputs

    def outputs(ds, what):
        loader = make_loader(ds, adapter, batch_size, train=False, num_workers=num_workers)
        if accelerator is not None:
            loader = accelerator.prepare(loader)
        return predict_outputs(adapter, loader, accelerator, progress=progress, desc=f"{desc} {what}")

    t0 = time.perf_counter()
    _, train_features, train_targets, _ = outputs(reference_ds, "reference")
    if len(train_targets) < 2:
        raise ValueError(f"an OOD reference needs at least 2 training images, got {len(train_targets)}")
    ood = MahalanobisOOD.fit(train_features, train_targets, config.max_features)
    has_val = val_ds is not None and len(val_ds) > 0
    if has_val:
        val_logits, val_features, val_targets, _ = outputs(val_ds, "validation")
        ood.set_threshold(ood.score(val_features), config.ood_quantile, "validation")
        calibration = Calibration.fit(val_logits, val_targets) if config.calibrate else Calibration()
    else:
        ood.set_threshold(ood.score(train_features), config.ood_quantile, "training")
        calibration = Calibration()
    info = {
        "fitted": time.time(),
        "fit_time_s": round(time.perf_counter() - t0, 3),
        "reference_images": int(len(train_targets)),
        "validation_images": int(len(val_targets)) if has_val else 0,
        "features": getattr(adapter, "feature_description", None) or "penultimate features",
        "train_score_quantiles": _quantiles(ood.score(train_features)),
    }
    return TrustReference(config, ood, calibration, info)


def _quantiles(scores: np.ndarray) -> dict:
    return {f"q{int(q * 100)}": float(np.quantile(scores, q)) for q in (0.5, 0.95, 0.99)} if len(scores) else {}


def _run_of(checkpoint: Path):
    """The run folder a ``<run>/<model>/<mag>/fold<k>/best`` checkpoint lies in, or None (an exported model)."""
    from trainer.rundir import RunDir

    if checkpoint.name == "best" and checkpoint.parent.name.startswith("fold"):
        run = RunDir(checkpoint.parent.parent.parent.parent)
        if run.config_file.is_file():
            return run
    return None


def calibrate_checkpoint(
    checkpoint,
    *,
    data_root=None,
    splits_file=None,
    fold: int | None = None,
    magnification: str | None = None,
    source: str | None = None,
    config: TrustConfig | None = None,
    batch_size: int = 64,
    device: str | None = None,
    progress: bool = False,
) -> dict:
    """Fit and save the trust reference of an existing checkpoint (a run's ``best/`` or an exported app model)
    on one fold's training patients (reference) and validation patients (threshold, temperature), then report
    its test patients' OOD share and ECE before / after. A run's checkpoint finds its data, splits, fold and
    magnification in the run folder; an exported model needs ``data_root`` (a folder, or a list of folders indexed
    as one dataset) and ``splits_file`` (its fold and magnification are in its ``engine.json``)."""

    from trainer.config import ExperimentConfig
    from trainer.data.dataset import PatchDataset
    from trainer.data.roots import index_roots
    from trainer.data.splits import Splits
    from trainer.models import checkpoint_folder, load_checkpoint

    folder = checkpoint_folder(checkpoint)
    run = _run_of(folder)
    run_cfg = ExperimentConfig.from_yaml(run.config_file) if run is not None else None
    ckpt = load_checkpoint(folder, device)
    meta = ckpt.meta or {}
    roots = [str(r) for r in ([data_root] if isinstance(data_root, (str, Path)) else data_root or [])]
    roots = roots or (run_cfg.data.roots if run_cfg else [])
    splits_file = splits_file or (run.splits_file if run is not None else None)
    if not roots or not splits_file:
        raise ValueError(
            f"{folder} is not inside a run folder: give the dataset (--data ROOT) and the run's folds (--splits SPLITS.json)"
        )
    fold = int(fold if fold is not None else meta.get("fold", 0))
    magnification = magnification or meta.get("magnification") or "all"
    if source is None:
        source = "auto"
        if run_cfg and [Path(r) for r in run_cfg.data.roots] == [Path(r) for r in roots]:
            source = run_cfg.data.source  # index_dataset reads synthetic as breakhis
    cfg = config or (run_cfg.trust if run_cfg else TrustConfig())
    splits = Splits.load(splits_file)
    by_fold = {f.fold: f for f in splits.folds}
    if fold not in by_fold:
        raise ValueError(f"{splits_file} has no fold {fold} (folds: {sorted(by_fold)})")
    records = index_roots(roots, source, verify=True).records
    if magnification != "all":
        records = [r for r in records if r.magnification == magnification]
    target = meta.get("target", "label")
    if target == "subtype":
        records = [r for r in records if r.subtype_index >= 0]
    train_r, val_r, test_r = by_fold[fold].partition(records)
    if not train_r:
        raise ValueError(
            f"no training images of fold {fold} in {' + '.join(roots)}: are these the run's data and folds?"
        )
    tf = ckpt.adapter.transform(False, ckpt.input_size)
    stain = meta.get("stain_normalization")

    def ds(recs):
        return PatchDataset(recs, tf, target=target, stain=stain)

    seed = int(run_cfg.data.seed if run_cfg else 42) + fold
    reference = fit_reference(
        ckpt.adapter,
        reference_dataset(ds(train_r), tf, cfg.reference_images, seed),
        ds(val_r),
        cfg,
        batch_size=batch_size,
        progress=progress,
        desc="calibrate",
    )
    reference.info.update(
        {"data": " + ".join(roots), "fold": fold, "magnification": magnification, "tool": "calibrate"}
    )
    test = {}
    if test_r:
        from trainer.engine import make_loader, predict_outputs
        from trainer.metrics import expected_calibration_error
        from trainer.trust.assess import assess

        loader = make_loader(ds(test_r), ckpt.adapter, batch_size, train=False)
        logits, features, targets, _ = predict_outputs(ckpt.adapter, loader, progress=progress, desc="calibrate test")
        judged = assess(logits, features, ckpt.classes, reference)
        flagged = np.array([bool(f) for f in judged.ood])
        test = {
            "test_images": int(len(targets)),
            "test_patients": len({r.patient_id for r in test_r}),
            "test_ood_share": float(flagged.mean()) if len(flagged) else None,
            "test_ece_before": expected_calibration_error(targets, judged.probs_raw),
            "test_ece_after": expected_calibration_error(targets, judged.probs),
        }
        reference.info["test"] = test
    reference.save(folder)
    return {"checkpoint": str(folder), "fold": fold, "magnification": magnification, **reference.summary(), **test}

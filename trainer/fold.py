"""One cell of the CV grid, (model, magnification, fold), as named steps: ``prepare_fold`` (records, model,
datasets) -> ``fit_fold`` (the engine's loop) -> ``fit_trust`` (OOD reference and temperature) -> ``test_fold``
(score and judge the test patients) -> ``write_fold`` (``predictions.csv``, ``metrics.json``). ``trainer.cv``
runs the grid; ``run_fold`` chains the steps."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.config import ExperimentConfig, ModelConfig
from trainer.data.records import Record, class_names
from trainer.data.splits import Fold, subsample_patients, subsample_per_patient
from trainer.engine import EventLog, StopControl, fit, make_loader, predict_outputs
from trainer.metrics import classification_metrics, expected_calibration_error
from trainer.rundir import FoldDir, write_json_atomic
from trainer.runfiles import trust_columns, write_predictions
from trainer.trust.assess import Assessment, assess

__all__ = ["Stopped", "run_fold", "prepare_fold", "fit_fold", "fit_trust", "test_fold", "write_fold", "cache_options"]


class Stopped(Exception):
    """Raised inside the runner when a stop was requested; the run ends with state ``stopped``."""


@dataclass
class FoldWork:
    """One (model, magnification, fold) cell as its steps pass it on: the model, its three datasets, where it
    writes."""

    cfg: ExperimentConfig
    model_cfg: ModelConfig
    magnification: str
    fold: Fold
    out: FoldDir
    classes: list[str]
    adapter: Any
    train_ds: Any
    val_ds: Any
    test_ds: Any

    @property
    def seed(self) -> int:
        return self.cfg.data.seed + self.fold.fold


@dataclass
class Tested:
    """The test step's outcome: the scored records in dataset order, their targets, trust verdicts and metrics."""

    records: list[Record]
    targets: np.ndarray
    judged: Assessment
    metrics: dict


def run_fold(
    cfg: ExperimentConfig,
    model_cfg: ModelConfig,
    magnification: str,
    fold: Fold,
    records: list[Record],
    fdir: Path,
    *,
    accelerator,
    events: EventLog,
    stop: StopControl,
    progress: bool = True,
    desc: str = "",
) -> dict:
    """Train one (model, magnification, fold), predict its test patients, write predictions + metrics:
    prepare -> fit -> trust -> test -> write."""
    work = prepare_fold(cfg, model_cfg, magnification, fold, records, fdir)
    trainable, total = work.adapter.parameter_counts()
    events.emit(
        "fold_start",
        n_train=len(work.train_ds),
        n_val=len(work.val_ds),
        n_test=len(work.test_ds),
        trainable_params=trainable,
        total_params=total,
    )
    result = fit_fold(work, accelerator=accelerator, events=events, stop=stop, progress=progress, desc=desc)
    trust = fit_trust(work, accelerator=accelerator, progress=progress, desc=desc)
    tested = test_fold(work, trust, accelerator=accelerator, progress=progress, desc=desc)
    if accelerator.is_main_process:
        write_fold(work, result, trust, tested)
    events.emit("fold_end", metrics=tested.metrics)
    accelerator.wait_for_everyone()
    return tested.metrics


def prepare_fold(
    cfg: ExperimentConfig, model_cfg: ModelConfig, magnification: str, fold: Fold, records: list[Record], fdir: Path
) -> FoldWork:
    """The fold's records at its magnification (training thinned by ``data.train_patients`` / ``data.subsample``),
    a fresh model and its three datasets."""
    from trainer.data.dataset import PatchDataset
    from trainer.models import build_adapter

    classes = class_names(cfg.data.target)
    seed = cfg.data.seed + fold.fold
    train_r, val_r, test_r = fold.partition(_records_at(records, magnification))
    # data.train_patients / data.subsample thin training (and validation: subsample) only: every test image is scored.
    train_r = subsample_patients(train_r, cfg.data.train_patients, seed)
    train_r = subsample_per_patient(train_r, cfg.data.subsample, seed)
    val_r = subsample_per_patient(val_r, cfg.data.subsample, seed)
    if not train_r or not test_r:
        raise ValueError(
            f"fold {fold.fold} at {magnification}: {len(train_r)} training and {len(test_r)} test images; "
            f"is the magnification present in the data?"
        )
    adapter = build_adapter(model_cfg, len(classes))

    def dataset(recs, train):
        # Stain normalisation runs once per image in the dataset (before its cache), not every epoch in the transform.
        return PatchDataset(
            recs,
            adapter.transform(
                train, cfg.data.input_size, color_jitter=cfg.data.color_jitter, hed_jitter=cfg.data.hed_jitter
            ),
            target=cfg.data.target,
            stain=cfg.data.stain_normalization,
            **cache_options(cfg),
        )

    datasets = dataset(train_r, True), dataset(val_r, False), dataset(test_r, False)
    return FoldWork(cfg, model_cfg, magnification, fold, FoldDir(Path(fdir)), classes, adapter, *datasets)


def fit_fold(work: FoldWork, *, accelerator, events: EventLog, stop: StopControl, progress: bool, desc: str):
    """Train (or resume) the fold's model; its best weights end in ``best/``. Raises ``Stopped`` on a stop."""
    cfg = work.cfg
    meta = {
        "model": work.model_cfg.display_name,
        "magnification": work.magnification,
        "fold": work.fold.fold,
        "input_size": cfg.data.input_size,
        "target": cfg.data.target,
        "classes": work.classes,
        "experiment": cfg.name,
        "stain_normalization": cfg.data.stain_normalization,
        **training_images(work.train_ds.records),
    }
    result = fit(
        work.adapter,
        work.train_ds,
        work.val_ds,
        cfg.train,
        accelerator=accelerator,
        out_dir=work.out.path,
        events=events,
        stop=stop,
        seed=work.seed,
        num_workers=cfg.data.num_workers,
        progress=progress,
        desc=desc,
        checkpoint_meta=meta,
    )
    if result.state == "stopped":
        accelerator.free_memory()
        raise Stopped(stop.reason)
    work.adapter.prepared_module = None
    return result


def fit_trust(work: FoldWork, *, accelerator, progress: bool, desc: str):
    """The OOD reference and the temperature (``trust.enabled``), fitted on the best weights and saved beside
    them; None when trust is off."""
    from trainer.trust.fit import fit_reference, reference_dataset

    cfg = work.cfg
    if not cfg.trust.enabled:
        return None
    reference = reference_dataset(
        work.train_ds, work.adapter.transform(False, cfg.data.input_size), cfg.trust.reference_images, work.seed
    )
    trust = fit_reference(
        work.adapter,
        reference,
        work.val_ds,
        cfg.trust,
        batch_size=cfg.train.batch_size,
        accelerator=accelerator,
        num_workers=cfg.data.num_workers,
        progress=progress,
        desc=f"{desc} trust",
    )
    if accelerator.is_main_process:
        trust.save(work.out.best)
    return trust


def test_fold(work: FoldWork, trust, *, accelerator, progress: bool, desc: str) -> Tested:
    """Score the test patients once (logits and features), judge them with the trust reference and measure."""
    cfg = work.cfg
    loader = accelerator.prepare(
        make_loader(work.test_ds, work.adapter, cfg.train.batch_size, train=False, num_workers=cfg.data.num_workers)
    )
    logits, features, targets, idx = predict_outputs(
        work.adapter, loader, accelerator, progress=progress, desc=f"{desc} test"
    )
    accelerator.free_memory()
    recs = [work.test_ds.records[i] for i in idx]
    judged = assess(logits, features, work.classes, trust)
    # calibrated (the fitted temperature); = the model's own without a trust reference
    metrics = classification_metrics(targets, judged.probs, [r.patient_id for r in recs])
    metrics["ece_uncalibrated"] = expected_calibration_error(targets, judged.probs_raw)
    return Tested(recs, targets, judged, metrics)


def write_fold(work: FoldWork, result, trust, tested: Tested) -> None:
    """``predictions.csv`` and then ``metrics.json`` (its presence marks the fold finished); ``last/`` goes."""
    out = work.out
    write_predictions(
        out.predictions_file,
        tested.records,
        tested.targets,
        tested.judged.probs,
        work.classes,
        work.magnification,
        work.fold.fold,
        extra=trust_columns(tested.judged),
    )
    fit_info = {
        "state": result.state,
        "epochs": result.epochs,
        "global_step": result.global_step,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "train_time_s": round(result.train_time_s, 3),
        "images_per_s": round(result.images_per_s, 2),
        "resumed": result.resumed,
    }
    write_json_atomic(
        out.metrics_file,
        {
            "model": work.model_cfg.display_name,
            "magnification": work.magnification,
            "fold": work.fold.fold,
            "n_train": len(work.train_ds),
            "n_val": len(work.val_ds),
            "n_test": len(work.test_ds),
            "metrics": tested.metrics,
            "trust": trust_summary(trust, tested.judged),
            "fit": fit_info,
            "finished": time.time(),
        },
    )
    shutil.rmtree(out.last, ignore_errors=True)  # resume state is not needed once the fold is finished


def cache_options(cfg: ExperimentConfig) -> dict:
    """``PatchDataset`` cache arguments for ``data.cache``: decoded images resized to the input size, kept in
    memory, or on disk under ``<output_dir>/.cache/images`` (shared by every run there, keyed by file, size
    and modification time, so a later run or fold skips decoding)."""
    if cfg.data.cache == "none":
        return {}
    if cfg.data.cache == "disk":
        return {
            "cache_size": cfg.data.input_size,
            "cache_dir": Path(cfg.output_dir) / ".cache" / "images",
            "memory_cache": False,
        }
    return {"cache_size": cfg.data.input_size}


def training_images(records, sample: int = 32) -> dict:
    """What the training images were, kept in the checkpoint so the app can say when an image lies outside them
    (``histoapp.models.domain``): their dataset(s) and the median size of up to ``sample`` of them (headers only)."""
    from statistics import median

    from trainer.data.images import ImageError, probe

    sizes = []
    for r in records[:: max(1, len(records) // sample)][:sample]:
        try:
            sizes.append(probe(r.path))
        except (ImageError, OSError):
            continue
    out = {"dataset": "+".join(sorted({r.dataset for r in records}))}
    if sizes:
        out["image_size"] = [int(median(w for w, _ in sizes)), int(median(h for _, h in sizes))]
    return out


def trust_summary(trust, judged: Assessment) -> dict:
    """metrics.json's ``trust`` record: the temperature and validation ECE / NLL before and after it, the OOD
    threshold, and the share of the test images it flags."""
    if trust is None:
        return {"reference": None}
    flagged = [f for f in judged.ood if f is not None]
    return {
        **trust.summary(),
        "test_ood_share": (sum(flagged) / len(flagged)) if flagged else None,
        "reference_images": trust.info.get("reference_images"),
        "validation_images": trust.info.get("validation_images"),
    }


def _records_at(records: list[Record], magnification: str) -> list[Record]:
    return list(records) if magnification == "all" else [r for r in records if r.magnification == magnification]

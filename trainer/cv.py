"""The experiment runner: models x magnifications x folds on saved patient-level folds.

    results = run_experiment(ExperimentConfig.from_yaml("trainer/configs/quick_demo.yaml"))
    results = load_results("runs/quick_demo")

Writes the run folder described in docs/ARCHITECTURE.md. A re-run of the same config skips finished folds
and resumes an interrupted one from its ``last/`` checkpoint."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

from trainer.config import ExperimentConfig
from trainer.data.grouping import grouping_note, patient_groups
from trainer.data.records import Record
from trainer.data.roots import index_roots
from trainer.data.splits import Splits, make_splits
from trainer.engine import EventLog, RunStatus, StopControl, make_accelerator
from trainer.fold import Stopped, run_fold
from trainer.results import load_results, write_results
from trainer.rundir import RunDir, next_attempt

__all__ = ["run_experiment", "load_results", "prepare_data", "run_fold", "Stopped"]

# Keys that may change between a run and its re-run without mixing up results.
_RERUN_FREE_KEYS = {
    "data.folds_to_run",
    "data.num_workers",
    "data.cache",
    "data.magnifications",
    "train.log_every",
    "train.checkpoint_every",
    "notes",
    "models",
    "output_dir",
}
# Size of the synthetic dataset the runner generates when data.source == "synthetic" and data.root is empty.
SYNTHETIC = {"patients_per_subtype": 2, "images_per_magnification": 8, "size": 96, "seed": 0}


def prepare_data(cfg: ExperimentConfig, run_dir: Path | None = None) -> tuple[list[Record], str]:
    """Index the dataset (several roots as one, ``trainer.data.roots``; generating it first for ``source:
    synthetic``); problems are reported and skipped. Returns the records and the dataset's label level
    (``records.LABEL_LEVELS``: per patient or per patch)."""
    data = cfg.data
    roots = data.roots
    if not roots:
        raise ValueError("data.root is empty: give the dataset folder (`--data-root PATH` or `--set data.root=PATH`)")
    if data.source == "synthetic":
        if len(roots) > 1:
            raise ValueError("data.source synthetic generates one dataset: give one data.root")
        if not _has_images(Path(roots[0])):
            from trainer.data.synthetic import generate

            print(f"generating synthetic BreakHis-like data in {roots[0]} ...", flush=True)
            generate(roots[0], **SYNTHETIC)
    report = index_roots(roots, data.source, verify=True)  # synthetic: indexed as breakhis, marked generated
    note = grouping_note(report.records, data.patient_grouping)
    if note:
        report.notes.append(note)
    report_file = RunDir(run_dir).data_report_file if run_dir is not None else None
    if report_file is not None:
        report.write_json(report_file)
    for line in report.notes:
        print(f"data: {line}", flush=True)
    if report.problems:
        print(
            f"data: {len(report.problems)} problem(s) skipped, listed in {report_file or 'the index report'}",
            flush=True,
        )
    records = report.records
    if data.target == "subtype":
        records = [r for r in records if r.subtype_index >= 0]
    if data.split_on_magnifications and "all" not in data.magnifications:
        records = [r for r in records if r.magnification in data.magnifications]
        print(
            f"data: folds over the {len({r.patient_id for r in records})} patient ids with images at "
            f"{', '.join(data.magnifications)} ({len(records)} images; data.split_on_magnifications)",
            flush=True,
        )
    if not records:
        raise ValueError(f"no usable images found in {' + '.join(roots)} (source {data.source!r})")
    return records, report.label_level


def _has_images(root: Path) -> bool:
    return root.is_dir() and any(p.suffix.lower() in (".png", ".jpg", ".jpeg") for p in root.rglob("*"))


def load_or_make_splits(
    cfg: ExperimentConfig, records: list[Record], run_dir: Path, label_level: str = "patient"
) -> Splits:
    """Folds come from ``data.splits_file`` (shared by every model of a comparison), else the run folder's
    own ``splits.json`` (a re-run), else are made now and saved."""
    target = RunDir(run_dir).splits_file
    groups = patient_groups(records, cfg.data.patient_grouping)
    if cfg.data.splits_file:
        splits = Splits.load(cfg.data.splits_file)
        splits.check_groups(groups)  # shared folds made under data.patient_grouping: slide may separate a group
        splits.save(target)
    elif target.exists():  # the run's own folds, kept as they are so a resumed run's folds stay its own
        splits = Splits.load(target)
    else:
        splits = make_splits(
            records, cfg.data.folds, cfg.data.seed, cfg.data.val_fraction, label_level=label_level, groups=groups
        )
        splits.save(target)
    known = set(splits.patient_labels) or {
        p for f in splits.folds for p in f.train_patients + f.val_patients + f.test_patients
    }
    missing = {r.patient_id for r in records} - known
    if missing:
        raise ValueError(
            f"the splits do not cover {len(missing)} patient(s) of this dataset (e.g. {sorted(missing)[0]}); "
            f"they were made for another dataset. Remove {target} or set data.splits_file"
        )
    return splits


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _check_rerun(run_dir: Path, cfg: ExperimentConfig) -> None:
    """A run folder holds one experiment: refuse to mix results of different settings."""
    path = RunDir(run_dir).config_file
    if not path.exists():
        return
    old = _flat(ExperimentConfig.from_yaml(path).to_dict())
    new = _flat(cfg.to_dict())
    changed = sorted(
        k for k in set(old) | set(new) if k not in _RERUN_FREE_KEYS and k != "name" and old.get(k) != new.get(k)
    )
    if changed:
        raise ValueError(
            f"{run_dir} already holds a run with different settings ({', '.join(changed)}); "
            f"choose another name (--name) or delete that folder"
        )


def _grid_union(run_dir: Path, cfg: ExperimentConfig) -> ExperimentConfig:
    """The config to save: a re-run that names part of the grid (``train``, ``--model``, ``folds_to_run``) adds
    its models / magnifications / folds to those the folder already holds, so ``config.yaml`` (and the
    results' expected fold count) keeps describing the whole folder."""
    path = RunDir(run_dir).config_file
    if not path.exists():
        return cfg
    old, new = ExperimentConfig.from_yaml(path).to_dict(), cfg.to_dict()
    models = list(old["models"]) + [m for m in new["models"] if m not in old["models"]]
    mags = list(old["data"]["magnifications"]) + [
        m for m in new["data"]["magnifications"] if m not in old["data"]["magnifications"]
    ]
    a, b = old["data"]["folds_to_run"], new["data"]["folds_to_run"]
    folds = None if a is None or b is None else sorted(set(a) | set(b))
    new["models"], new["data"]["magnifications"], new["data"]["folds_to_run"] = models, mags, folds
    return ExperimentConfig.from_dict(new)


def run_experiment(cfg: ExperimentConfig, *, progress: bool = True, cpu: bool = False) -> dict:
    """Run (or continue) the whole grid and return ``load_results(run_dir)`` plus ``state``."""
    run_dir = cfg.run_dir
    run = RunDir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_rerun(run_dir, cfg)
    accelerator = make_accelerator(cfg.train, cpu=cpu)
    main = accelerator.is_main_process
    # Every event and the status carry this start's attempt id: curves show the latest attempt at each fold
    # (trainer.rundir.current_events), not a killed attempt's steps beside the resumed ones.
    attempt = next_attempt(run.events())
    status = RunStatus(run_dir, enabled=main, attempt=attempt)
    events = EventLog(run.events_file, enabled=main, attempt=attempt)
    stop = StopControl(run_dir)
    if main:
        stop.clear_file()  # a STOP left by the previous (stopped) run must not end this one
        _grid_union(run_dir, cfg).to_yaml(run.config_file)
    accelerator.wait_for_everyone()
    stop.install_signal_handlers()
    status.set("running", "preparing data")
    state, message = "finished", ""
    try:
        records, label_level = prepare_data(cfg, run_dir if main else None)
        splits = load_or_make_splits(cfg, records, run_dir, label_level)
        folds = cfg.data.folds_to_run if cfg.data.folds_to_run is not None else [f.fold for f in splits.folds]
        unknown = [k for k in folds if k not in {f.fold for f in splits.folds}]
        if unknown:
            raise ValueError(f"data.folds_to_run names fold(s) {unknown} but the splits have {len(splits.folds)} folds")
        events.emit(
            "run_start",
            pid=os.getpid(),
            models=[m.display_name for m in cfg.models],
            magnifications=cfg.data.magnifications,
            folds=folds,
        )
        grid = [(m, mag, k) for m in cfg.models for mag in cfg.data.magnifications for k in folds]
        for i, (model_cfg, mag, k) in enumerate(grid):
            if stop.requested:
                raise Stopped(stop.reason)
            fdir = run.fold(model_cfg.display_name, mag, k)
            if fdir.finished:
                print(
                    f"[{i + 1}/{len(grid)}] {model_cfg.display_name} {mag} fold {k}: finished earlier, skipped",
                    flush=True,
                )
                continue
            status.set("running", f"{model_cfg.display_name} {mag} fold {k} ({i + 1}/{len(grid)})")
            run_fold(
                cfg,
                model_cfg,
                mag,
                splits.folds[[f.fold for f in splits.folds].index(k)],
                records,
                fdir.path,
                accelerator=accelerator,
                events=events.bind(model=model_cfg.display_name, magnification=mag, fold=k),
                stop=stop,
                progress=progress,
                desc=f"[{i + 1}/{len(grid)}] {model_cfg.display_name} {mag} fold {k}",
            )
            if main:
                write_results(run_dir, load_results(run_dir))
    except Stopped as exc:
        state, message = "stopped", str(exc)
    except BaseException as exc:
        state, message = "failed", f"{exc.__class__.__name__}: {exc}"
        if main:
            run.error_file.write_text(traceback.format_exc())
        raise
    finally:
        stop.restore_signal_handlers()
        events.emit("run_end", state=state, message=message)
        status.set(state, message)
        if main and state != "failed":
            write_results(run_dir, load_results(run_dir))
    if state == "stopped":
        print(f"run stopped ({message}); run the same command again to resume", flush=True)
    return {**load_results(run_dir), "state": state}

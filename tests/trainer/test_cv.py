"""The runner end to end: a 2-fold CV of small torchvision models writes the run folder and its results; an
interrupted run resumes from its checkpoint and does not redo finished folds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from trainer.config import ExperimentConfig
from trainer.cv import run_experiment
from trainer.data.splits import Splits
from trainer.engine import events as events_mod
from trainer.engine.events import read_events

from .conftest import tiny_config


def test_two_fold_cv_writes_the_run_folder(cv_run, tiny_data):
    for name in (
        "config.yaml",
        "splits.json",
        "status.json",
        "metrics.jsonl",
        "data_report.json",
        "results.json",
        "results.csv",
        "results.md",
    ):
        assert (cv_run / name).is_file(), name
    assert json.loads((cv_run / "status.json").read_text())["state"] == "finished"
    splits = Splits.load(cv_run / "splits.json")
    assert len(splits.folds) == 2
    for model in ("resnet18", "mobilenet_v3_small"):
        seen = set()
        for k in (0, 1):
            fdir = cv_run / model / "40X" / f"fold{k}"
            assert sorted(p.name for p in (fdir / "best").iterdir()) == [
                "adapter.json",
                "engine.json",
                "model.safetensors",
                "trust.json",
                "trust.safetensors",
            ]
            assert not (fdir / "last").exists()  # resume state is removed once the fold is finished
            # What the training images were, for the app's "trained on" line and warnings (issue 23).
            meta = json.loads((fdir / "best" / "engine.json").read_text())
            sizes = {Image.open(p).size for p in Path(tiny_data).rglob("*.png")}
            assert meta["dataset"] == "breakhis" and tuple(meta["image_size"]) in sizes
            rows = list(csv.DictReader((fdir / "predictions.csv").read_text().splitlines()))
            assert list(rows[0])[:8] == [
                "image_id",
                "path",
                "patient_id",
                "label",
                "prob_malignant",
                "pred",
                "magnification",
                "fold",
            ]
            # Test images are exactly the fold's test patients, at 40X only.
            assert {r["patient_id"] for r in rows} == set(splits.folds[k].test_patients)
            assert {r["magnification"] for r in rows} == {"40X"}
            seen |= {r["image_id"] for r in rows}
            m = json.loads((fdir / "metrics.json").read_text())
            assert m["n_test"] == len(rows) and 0.0 <= m["metrics"]["accuracy"] <= 1.0
            assert m["fit"]["epochs"] == 2 and m["fit"]["resumed"] is False
            # The trust reference fitted at the end of training: calibrated test probabilities, OOD scores.
            trust = m["trust"]
            assert trust["temperature"] > 0 and trust["ood_threshold"] > 0 and 0 <= trust["test_ood_share"] <= 1
            assert "ece_uncalibrated" in m["metrics"] and trust["ece_before"] is not None
            assert {"prob_malignant_raw", "ood_score", "ood"} <= set(rows[0])
            assert {r["ood"] for r in rows} <= {"true", "false"}
        assert len(seen) == 16 * 2  # every 40X image is tested exactly once over the two folds

    results = json.loads((cv_run / "results.json").read_text())
    assert [(r["model"], r["magnification"], r["n_folds"]) for r in results["rows"]] == [
        ("resnet18", "40X", 2),
        ("mobilenet_v3_small", "40X", 2),
    ]
    row = results["rows"][0]
    accs = [
        json.loads((cv_run / "resnet18" / "40X" / f"fold{k}" / "metrics.json").read_text())["metrics"]["accuracy"]
        for k in (0, 1)
    ]
    assert row["mean"]["accuracy"] == pytest.approx(sum(accs) / 2)
    table = (cv_run / "results.csv").read_text().splitlines()
    assert table[0].startswith("model,magnification,n_folds,accuracy_mean,accuracy_std") and len(table) == 3
    md = (cv_run / "results.md").read_text()
    assert "| Model | Magnification | Accuracy | Precision | Recall | F1 | AUC | Folds |" in md
    assert "Folds finished: 4 of 4" in md

    ev = read_events(cv_run / "metrics.jsonl")
    kinds = {e["event"] for e in ev}
    assert {"run_start", "fold_start", "step", "epoch", "fold_end", "run_end"} <= kinds
    step = next(e for e in ev if e["event"] == "step")
    assert {"time", "model", "magnification", "fold", "epoch", "step", "loss", "lr", "images_per_s", "mem_mb"} <= set(
        step
    )


def _stop_after_first_epoch_of(fold: int, monkeypatch):
    """Request a stop (the STOP file, as the UI does) when ``fold`` finishes its first epoch."""
    original = events_mod.EventLog.emit

    def emit(self, event, **fields):
        original(self, event, **fields)
        if event == "epoch" and self.context.get("fold") == fold and fields.get("epoch") == 0 and self.path is not None:
            (self.path.parent / events_mod.STOP_FILE).touch()

    monkeypatch.setattr(events_mod.EventLog, "emit", emit)


def test_interrupted_run_resumes_and_skips_finished_folds(tmp_path, tiny_data, monkeypatch):
    cfg = ExperimentConfig.from_dict(tiny_config(tmp_path, tiny_data, epochs=3))
    run = cfg.run_dir
    with monkeypatch.context() as m:
        _stop_after_first_epoch_of(1, m)
        first = run_experiment(cfg, progress=False)
    assert first["state"] == "stopped"
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"
    fold0, fold1 = (run / "resnet18" / "40X" / f"fold{k}" for k in (0, 1))
    assert (fold0 / "metrics.json").is_file() and not (fold1 / "metrics.json").exists()
    assert json.loads((fold1 / "last" / "trainer_state.json").read_text())["epoch"] == 1
    finished0 = (fold0 / "metrics.json").read_bytes()
    n_events = len(read_events(run / "metrics.jsonl"))
    assert "Folds finished: 1 of 2" in (run / "results.md").read_text()

    second = run_experiment(cfg, progress=False)  # the same command again
    assert second["state"] == "finished"
    assert (fold0 / "metrics.json").read_bytes() == finished0  # fold 0 was not trained again
    new = read_events(run / "metrics.jsonl")[n_events:]
    assert [e["fold"] for e in new if e["event"] == "fold_start"] == [1]
    resume = [e for e in new if e["event"] == "resume"]
    assert len(resume) == 1 and resume[0]["epoch"] == 1
    assert [e["epoch"] for e in new if e["event"] == "epoch"] == [1, 2]  # only the epochs left
    fit = json.loads((fold1 / "metrics.json").read_text())["fit"]
    assert fit["resumed"] is True and fit["epochs"] == 3
    assert not (fold1 / "last").exists() and not (run / "STOP").exists()
    assert second["rows"][0]["n_folds"] == 2

    n_events = len(read_events(run / "metrics.jsonl"))
    third = run_experiment(cfg, progress=False)  # everything finished: nothing is trained
    assert third["state"] == "finished"
    assert not [e for e in read_events(run / "metrics.jsonl")[n_events:] if e["event"] == "fold_start"]


def test_a_run_folder_refuses_other_settings(tmp_path, tiny_data):
    cfg = ExperimentConfig.from_dict(tiny_config(tmp_path, tiny_data))
    cfg.run_dir.mkdir(parents=True)
    cfg.to_yaml(cfg.run_dir / "config.yaml")
    other = cfg.with_overrides(["train.lr=0.5"])
    with pytest.raises(ValueError, match="different settings.*train.lr"):
        run_experiment(other, progress=False)


def test_config_round_trip_and_overrides(tmp_path):
    cfg = ExperimentConfig.from_yaml("trainer/configs/paper_cnn.yaml")
    assert [m.name for m in cfg.models] == ["alexnet", "vgg19", "resnet34"] and cfg.data.folds == 5
    cfg2 = cfg.with_overrides(["model.pretrained=false", "train.epochs=3", "data.magnifications=[40X]"])
    assert (
        [m.pretrained for m in cfg2.models] == [False] * 3
        and cfg2.train.epochs == 3
        and cfg2.data.magnifications == ["40X"]
    )
    cfg2.to_yaml(tmp_path / "c.yaml")
    assert ExperimentConfig.from_yaml(tmp_path / "c.yaml") == cfg2
    with pytest.raises(ValueError, match="unknown key"):
        cfg.with_overrides(["train.epochz=3"])
    with pytest.raises(ValueError, match="not one of"):
        cfg.with_overrides(["train.optimizer=adam"])
    for path in ("trainer/configs/quick_demo.yaml", "trainer/configs/results_cpu.yaml"):
        assert ExperimentConfig.from_yaml(path).models[0].pretrained is False  # both run offline
    assert yaml.safe_load(cfg.to_yaml())["data"]["folds"] == 5


def test_disk_cache_and_stain_normalisation_reach_the_datasets(tmp_path, tiny_data):
    cfg = ExperimentConfig.from_dict(tiny_config(tmp_path, tiny_data, epochs=1)).with_overrides(
        ["data.cache=disk", "data.stain_normalization=reinhard", "data.folds_to_run=[0]"]
    )
    res = run_experiment(cfg, progress=False)
    assert res["state"] == "finished" and res["rows"][0]["n_folds"] == 1
    cached = list((tmp_path / "runs" / ".cache" / "images").glob("*.npy"))
    m = json.loads((cfg.run_dir / "resnet18" / "40X" / "fold0" / "metrics.json").read_text())
    # Each image read was decoded, stain-normalised and resized once (a ragged training batch is dropped).
    assert m["n_val"] + m["n_test"] + 8 <= len(cached) <= 32
    best = cfg.run_dir / "resnet18" / "40X" / "fold0" / "best"
    assert json.loads((best / "engine.json").read_text())["stain_normalization"] == "reinhard"


def test_running_part_of_the_grid_keeps_config_describing_the_folder(tmp_path, tiny_data):
    from trainer.cli import main

    cfg = tiny_config(tmp_path, tiny_data, epochs=1)
    cfg["models"].append({"family": "cnn", "name": "mobilenet_v3_small", "pretrained": False})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "runs" / "tiny"
    # `train` runs one cell (first model, fold 1); then `cv` with only the second model and fold 0.
    assert main(["train", "--config", str(path), "--fold", "1", "--no-progress"]) == 0
    saved = ExperimentConfig.from_yaml(run / "config.yaml")
    assert [m.name for m in saved.models] == ["resnet18"] and saved.data.folds_to_run == [1]
    assert (
        main(
            [
                "cv",
                "--config",
                str(path),
                "--model",
                "mobilenet_v3_small",
                "--set",
                "data.folds_to_run=[0]",
                "--no-progress",
            ]
        )
        == 0
    )
    saved = ExperimentConfig.from_yaml(run / "config.yaml")
    assert [m.name for m in saved.models] == ["resnet18", "mobilenet_v3_small"] and saved.data.folds_to_run == [0, 1]
    assert "Folds finished: 2 of 4" in (run / "results.md").read_text()


def test_subtype_target_trains_an_eight_class_head(tmp_path, tiny_data):
    cfg = ExperimentConfig.from_dict(tiny_config(tmp_path, tiny_data, epochs=1)).with_overrides(
        ["data.target=subtype", "data.folds_to_run=[0]"]
    )
    res = run_experiment(cfg, progress=False)
    assert res["state"] == "finished"
    fdir = cfg.run_dir / "resnet18" / "40X" / "fold0"
    rows = list(csv.DictReader((fdir / "predictions.csv").read_text().splitlines()))
    # prob_malignant_raw: P(malignant) before temperature scaling (the trust columns of predictions.csv).
    assert [c for c in rows[0] if c.startswith("prob_") and c != "prob_malignant_raw"] == ["prob_malignant"] + [
        f"prob_{s}" for s in ("A", "F", "PT", "TA", "DC", "LC", "MC", "PC")
    ]
    assert "prob_malignant_raw" in rows[0]
    for r in rows:
        sub = float(r["prob_DC"]) + float(r["prob_LC"]) + float(r["prob_MC"]) + float(r["prob_PC"])
        assert float(r["prob_malignant"]) == pytest.approx(sub, abs=1e-5)
        assert 0 <= int(r["label"]) < 8
    m = json.loads((fdir / "metrics.json").read_text())["metrics"]
    assert len(m["confusion_matrix"]) == 8


def test_sigterm_ends_the_run_cleanly_at_the_next_step(tmp_path, tiny_data, monkeypatch):
    import os
    import signal

    original = events_mod.EventLog.emit

    def emit(self, event, **fields):
        original(self, event, **fields)
        if event == "step" and fields.get("step") == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # what the Train tab's Stop button sends

    monkeypatch.setattr(events_mod.EventLog, "emit", emit)
    cfg = ExperimentConfig.from_dict(tiny_config(tmp_path, tiny_data, epochs=2))
    before = signal.getsignal(signal.SIGTERM)
    res = run_experiment(cfg, progress=False)
    assert res["state"] == "stopped"
    assert signal.getsignal(signal.SIGTERM) == before  # the runner's handler is removed again
    status = json.loads((cfg.run_dir / "status.json").read_text())
    assert status["state"] == "stopped" and "SIGTERM" in status["message"]
    state = json.loads((cfg.run_dir / "resnet18" / "40X" / "fold0" / "last" / "trainer_state.json").read_text())
    assert (state["epoch"], state["global_step"], state["state"]) == (0, 1, "stopped")  # saved mid-epoch, resumable
    assert read_events(cfg.run_dir / "metrics.jsonl")[-1]["event"] == "run_end"


def test_train_patients_thins_training_patients_only(tmp_path, tiny_data):
    counts = {}
    for share in (None, 0.5):
        cfg = ExperimentConfig.from_dict(tiny_config(tmp_path / str(share), tiny_data, epochs=1)).with_overrides(
            ["data.folds_to_run=[0]"] + ([f"data.train_patients={share}"] if share else [])
        )
        assert run_experiment(cfg, progress=False)["state"] == "finished"
        m = json.loads((cfg.run_dir / "resnet18" / "40X" / "fold0" / "metrics.json").read_text())
        counts[share] = (m["n_train"], m["n_val"], m["n_test"])
    assert 0 < counts[0.5][0] < counts[None][0]  # fewer training images (whole patients dropped)
    assert counts[0.5][1:] == counts[None][1:]  # validation and test untouched


def test_a_cnn_starts_from_another_runs_checkpoint(tmp_path, tiny_data, cv_run):
    """model.init_from: a run's best checkpoint (loaded by load_checkpoint) is where the new run starts. With a
    learning rate of 0 the trained weights are exactly the source's; an 8-class run keeps them and a new head."""
    import torch
    from safetensors.torch import load_file

    source = cv_run / "resnet18" / "40X" / "fold0" / "best"
    want = load_file(str(source / "model.safetensors"))
    base = ExperimentConfig.from_dict(tiny_config(tmp_path, tiny_data, epochs=1, lr=0.0, max_steps=1))
    cfg = base.with_overrides([f"model.init_from={source}", "data.folds_to_run=[0]", "trust.enabled=false"])
    assert run_experiment(cfg, progress=False)["state"] == "finished"
    got = load_file(str(cfg.run_dir / "resnet18" / "40X" / "fold0" / "best" / "model.safetensors"))
    weights = [k for k in want if k.endswith("weight")]  # BatchNorm's running statistics move in any forward pass
    assert all(torch.equal(got[k], want[k]) for k in weights)
    eight = cfg.with_overrides(["name=eight", "data.target=subtype"])
    assert run_experiment(eight, progress=False)["state"] == "finished"
    got = load_file(str(eight.run_dir / "resnet18" / "40X" / "fold0" / "best" / "model.safetensors"))
    assert got["fc.weight"].shape == (8, 512) and torch.equal(
        got["layer4.1.conv2.weight"], want["layer4.1.conv2.weight"]
    )
    wrong = cfg.with_overrides(["name=wrong", "models.0.name=resnet34"])
    with pytest.raises(ValueError, match="cannot start a CNN 'resnet34'"):
        run_experiment(wrong, progress=False)
    status = json.loads(wrong.run_dir.joinpath("status.json").read_text())
    assert status["state"] == "failed" and "cannot start a CNN 'resnet34'" in status["message"]

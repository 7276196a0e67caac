"""A tiny finished cross-validation run shared by the runner, evaluate and compare tests (seconds on a CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

TINY = {"patients_per_subtype": 2, "images_per_magnification": 2, "size": 40, "seed": 3}


def tiny_config(tmp: Path, data_root: Path, **train) -> dict:
    """A 2-fold CV of ResNet18 at 32 px on generated data (40X), 2 epochs."""
    return {
        "name": "tiny",
        "output_dir": str(tmp / "runs"),
        "data": {
            "source": "breakhis",
            "root": str(data_root),
            "magnifications": ["40X"],
            "folds": 2,
            "seed": 1,
            "val_fraction": 0.25,
            "input_size": 32,
            "cache": "memory",
            "num_workers": 0,
        },
        "models": [{"family": "cnn", "name": "resnet18", "pretrained": False}],
        "train": {"epochs": 2, "batch_size": 8, "lr": 0.001, "early_stopping_patience": 0, "log_every": 1, **train},
    }


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    from trainer.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("tiny_breakhis"), **TINY)


@pytest.fixture(scope="session")
def cv_run(tmp_path_factory, tiny_data):
    """``python -m trainer cv --config C.yaml`` (in process) with two models, so compare has a pair."""
    from trainer.cli import main

    tmp = tmp_path_factory.mktemp("cv")
    cfg = tiny_config(tmp, tiny_data)
    cfg["models"].append({"family": "cnn", "name": "mobilenet_v3_small", "pretrained": False})
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["cv", "--config", str(path), "--no-progress", "--threads", "1"]) == 0
    return tmp / "runs" / "tiny"

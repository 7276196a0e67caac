import json
import shutil

import pytest

from histoapp.models.registry import ModelRegistry
from histoapp.settings import Settings


def _settings(tmp_path, runs):
    return Settings(runs_dir=runs, data_dir=tmp_path / "data")


def test_registry_finds_a_finished_runs_checkpoint_and_loads_it_once(tmp_path, trained_run):
    reg = ModelRegistry(_settings(tmp_path, trained_run), assets_dir=tmp_path / "no-assets", hub_models=[])
    entries = reg.list("cnn")
    assert [e.key for e in entries] == ["run:tiny/resnet18/all/fold0"]
    e = entries[0]
    assert e.source == "run" and e.family == "cnn" and "AUC 0.950" in e.name
    loaded = reg.load(e.key)
    assert loaded.classes == ["benign", "malignant"] and loaded.input_size == 64 and loaded.device in ("cpu", "cuda")
    assert reg.load(e.key) is loaded  # cached in memory
    assert not any(p.requires_grad for p in loaded.adapter.module.parameters())


def test_unfinished_folds_and_non_checkpoints_are_not_listed(tmp_path, tiny_checkpoint):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_checkpoint, runs / "r" / "resnet18" / "40X" / "fold1" / "best")  # no metrics.json yet
    (runs / "r" / "junk" / "40X" / "fold0" / "best").mkdir(parents=True)
    (runs / "r" / "junk" / "40X" / "fold0" / "metrics.json").write_text("{}")
    reg = ModelRegistry(_settings(tmp_path, runs), assets_dir=tmp_path / "none", hub_models=[])
    assert reg.list() == []
    (runs / "r" / "resnet18" / "40X" / "fold1" / "metrics.json").write_text(json.dumps({"metrics": {}}))
    assert [e.key for e in reg.list()] == ["run:r/resnet18/40X/fold1"]


def test_demo_models_come_with_their_card(tmp_path, tiny_checkpoint):
    assets = tmp_path / "assets"
    shutil.copytree(tiny_checkpoint, assets / "models" / "demo-cnn")
    (assets / "models" / "demo-cnn" / "card.md").write_text("# Demo CNN\nnot diagnostic")
    reg = ModelRegistry(_settings(tmp_path, tmp_path / "runs"), assets_dir=assets, hub_models=[])
    (e,) = reg.list()
    assert e.key == "demo:demo-cnn" and e.source == "demo" and "not diagnostic" in e.card


def test_hub_ids_offline_are_listed_unavailable_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reg = ModelRegistry(
        _settings(tmp_path, tmp_path / "runs"), assets_dir=tmp_path / "none", hub_models=["org/not-cached-model"]
    )
    (e,) = reg.list()
    assert e.source == "hub" and not e.available and "offline" in e.reason
    with pytest.raises(RuntimeError, match="not available"):
        reg.load(e.key)
    with pytest.raises(KeyError):
        reg.load("run:nope")


def test_unreachable_hub_is_said_in_plain_words(tmp_path, monkeypatch):
    import socket

    def refuse(*a, **k):
        raise socket.gaierror("Name or service not known")

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "create_connection", refuse)
    reg = ModelRegistry(
        _settings(tmp_path, tmp_path / "runs"), assets_dir=tmp_path / "none", hub_models=["org/not-cached-model"]
    )
    (e,) = reg.list()
    assert not e.available
    assert e.reason == "not downloaded yet, and this machine cannot reach huggingface.co to download it"
    assert "gaierror" not in e.reason and "(" not in e.reason


def test_a_model_from_a_stopped_or_unfinished_run_says_so(tmp_path, tiny_checkpoint):
    import yaml

    runs = tmp_path / "runs"
    fold = runs / "r" / "resnet18" / "40X" / "fold0"
    shutil.copytree(tiny_checkpoint, fold / "best")
    (fold / "metrics.json").write_text(json.dumps({"metrics": {}}))
    grid = {"data": {"folds": 2, "magnifications": ["40X"]}, "models": [{"family": "cnn", "name": "resnet18"}]}
    (runs / "r" / "config.yaml").write_text(yaml.safe_dump(grid))
    reg = ModelRegistry(_settings(tmp_path, runs), assets_dir=tmp_path / "none", hub_models=[])

    def label(state: str) -> str:
        (runs / "r" / "status.json").write_text(json.dumps({"state": state}))
        (entry,) = reg.list()
        return entry.name

    assert label("stopped").endswith("[stopped / partial]") and "stopped / partial" in reg.list()[0].card
    assert label("finished").endswith("[finished / partial]")  # finished, yet 1 of its 2 folds: still partial
    (runs / "r" / "config.yaml").write_text(yaml.safe_dump({**grid, "data": {**grid["data"], "folds": 1}}))
    assert "partial" not in label("finished")

"""Every shipped config loads as the one typed config; the grown-data ones say what their runs need (idc + idc-more
as one dataset, shared folds, BreakHis 100X with the cautious patient grouping, transfer from IDC weights)."""

import json
from pathlib import Path

import pytest

from trainer.config import ExperimentConfig

ROOT = Path(__file__).parents[2]
CONFIGS = sorted((ROOT / "trainer" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_loads(path):
    cfg = ExperimentConfig.from_yaml(path)
    assert cfg.name and cfg.models and cfg.data.roots


def test_grown_data_configs():
    load = {p.stem: ExperimentConfig.from_yaml(p) for p in CONFIGS}
    idc = ["../shared/data/idc", "../shared/data/idc-more"]
    for name in ("idc211_cv", "idc211_vlm_cv", "idc211_learning_curve"):
        assert load[name].data.root == idc and load[name].data.source == "idc"
    # One committed set of folds for the three (the paired tests and the curve compare the same test patches).
    folds = {load[name].data.splits_file for name in ("idc211_cv", "idc211_vlm_cv", "idc211_learning_curve")}
    assert folds == {"results/idc/idc211/splits.json"} and (ROOT / folds.pop()).is_file()
    assert load["idc211_learning_curve"].data.train_patients is not None
    for name in ("breakhis100x_cnn", "breakhis100x_from_idc", "breakhis100x_vlm"):
        d = load[name].data
        assert d.magnifications == ["100X"] and d.patient_grouping == "group" and d.source == "breakhis"
    for name in ("breakhis100x_from_idc", "breakhis100x_vlm"):
        assert load[name].data.splits_file == "runs/breakhis100x_cnn/splits.json"
    scratch, transfer = load["breakhis100x_cnn"].models[0], load["breakhis100x_from_idc"].models[0]
    assert scratch.name == transfer.name and scratch.init_from is None
    # The transfer starts from the bundled demo CNN: a fold of a 211-patient IDC config's run, same architecture.
    assert transfer.init_from == "assets/models/demo-cnn"
    meta = json.loads((ROOT / transfer.init_from / "engine.json").read_text())
    source = load[meta["experiment"]]
    assert source.data.root == idc and meta["model"] == (source.models[0].label or source.models[0].name)
    assert source.models[0].name == scratch.name and source.models[0].output_stride == scratch.output_stride

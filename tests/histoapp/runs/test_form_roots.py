"""The Train form's data folder field with several folders (trained on as one dataset): parsed into data.root as a
list, shown back as one line, each folder checked against the allowed roots."""

import os

from histoapp.runs.form import config_to_form, form_to_config, split_roots
from histoapp.runs.validate import check_config
from tests.histoapp.runs.tiny import tiny_config


def test_split_roots():
    assert split_roots("/a") == "/a" and split_roots("  ") == "" and split_roots(None) == ""
    assert split_roots("/a\n /b \n\n") == ["/a", "/b"]
    assert split_roots(f"/a{os.pathsep}/b") == ["/a", "/b"]


def test_several_folders_reach_the_config_and_come_back(run_settings, tiny_data):
    base = tiny_config(run_settings, "base", tiny_data)
    second = tiny_data.parent / "more"
    second.mkdir(exist_ok=True)
    values = config_to_form(base, run_settings) | {"data.root": f"{tiny_data}\n{second}"}
    cfg = form_to_config(values, base, run_settings)
    assert cfg.data.root == [str(tiny_data), str(second)]
    assert config_to_form(cfg, run_settings)["data.root"] == f"{tiny_data}{os.pathsep}{second}"
    assert form_to_config(config_to_form(cfg, run_settings), base, run_settings).to_dict() == cfg.to_dict()
    assert check_config(cfg, run_settings, cuda=False, available_families={"cnn"})[0] == []
    # Every folder is checked: one outside the allowed roots or missing is refused by name.
    bad = form_to_config(values | {"data.root": f"{tiny_data}\n/etc\n{second}-x"}, base, run_settings)
    errors, _ = check_config(bad, run_settings, cuda=False, available_families={"cnn"})
    assert any("/etc is outside the allowed data roots" in e for e in errors)
    assert any(f"{second}-x does not exist" in e for e in errors)


def test_the_batch_size_warning_counts_every_folder(run_settings, tiny_data):
    """A batch larger than the folds' training set is warned of with the images of all folders counted."""
    base = tiny_config(run_settings, "base", tiny_data)
    second = tiny_data.parent / "more"
    second.mkdir(exist_ok=True)
    values = config_to_form(base, run_settings) | {"data.root": f"{tiny_data}\n{second}", "train.batch_size": 100000}
    _, warnings = check_config(
        form_to_config(values, base, run_settings), run_settings, cuda=False, available_families={"cnn"}
    )
    assert any("larger than a fold's training set" in w and f"{tiny_data} + {second}" in w for w in warnings)

import pytest

from histoapp.runs import form
from histoapp.runs.form import FIELDS, config_to_form, form_to_config, load_preset
from histoapp.runs.validate import check_config
from histoapp.settings import BUNDLED_DATA, Settings
from tests.histoapp.runs.tiny import tiny_config


@pytest.mark.parametrize("preset", ["small demo (CPU: 5 min alone, up to 1 h busy)", "paper CNN", "paper LoRA"])
def test_preset_round_trips_through_the_form(preset, run_settings):
    cfg = load_preset(preset, run_settings)
    assert cfg.output_dir == str(run_settings.runs_dir)
    # data/... moves into the app's data folder; the quick demo's bundled data stays in the project
    home = BUNDLED_DATA if preset.startswith("small demo") else run_settings.data_dir
    assert cfg.data.root.startswith(str(home))
    again = form_to_config(config_to_form(cfg, run_settings), cfg, run_settings)
    assert again.to_dict() == cfg.to_dict()


def test_quick_demo_trains_on_the_bundled_real_idc_subset(run_settings, tmp_path):
    cfg = load_preset("small demo (CPU: 5 min alone, up to 1 h busy)", run_settings)
    assert cfg.data.source == "idc" and cfg.data.root == str(BUNDLED_DATA / "idc-mini")
    assert (BUNDLED_DATA / "idc-mini" / "MANIFEST.csv").is_file()
    assert config_to_form(cfg, run_settings)["data.source"] == "IDC patches"
    assert load_preset("quick_demo", run_settings) == cfg  # the API's launch_run names presets by file stem
    # The bundled data is an allowed root even when HISTOAPP_DATA_ROOTS names others.
    for settings in (run_settings, Settings(runs_dir=tmp_path / "r", data_dir=tmp_path / "d")):
        assert BUNDLED_DATA in settings.allowed_roots
        errors, _ = check_config(cfg, settings, cuda=False, available_families={"cnn"})
        assert errors == []


def test_paper_cnn_preset_has_the_papers_grid(run_settings):
    cfg = load_preset("paper CNN", run_settings)
    assert [m.name for m in cfg.models] == ["alexnet", "vgg19", "resnet34"]
    assert cfg.data.magnifications == ["40X", "100X", "200X", "400X"] and cfg.data.folds == 5


def test_missing_preset_file_is_reported(run_settings, monkeypatch):
    monkeypatch.setitem(form.PRESETS, "paper LoRA", "no_such_file.yaml")
    with pytest.raises(form.PresetMissing, match="no_such_file.yaml"):
        load_preset("paper LoRA", run_settings)


def test_form_edits_reach_the_config(run_settings, tiny_data):
    base = tiny_config(run_settings, "base", tiny_data)
    values = config_to_form(base, run_settings)
    values.update(
        {
            "name": "edited",
            "models.name": "resnet18, alexnet",
            "data.magnifications": ["100X", "all"],
            "train.epochs": 7,
            "train.max_steps": 0,
            "data.stain_normalization": "macenko",
            "overrides": "train.optimizer=sgd\n# comment\ndata.seed=3",
        }
    )
    cfg = form_to_config(values, base, run_settings)
    assert cfg.name == "edited" and [m.name for m in cfg.models] == ["resnet18", "alexnet"]
    assert cfg.data.magnifications == ["100X", "all"] and cfg.train.epochs == 7 and cfg.train.max_steps is None
    assert cfg.data.stain_normalization == "macenko" and cfg.train.optimizer == "sgd" and cfg.data.seed == 3
    assert all(m.pretrained is False for m in cfg.models)


def test_annotated_set_maps_to_the_export_folder(run_settings, tiny_data):
    base = tiny_config(run_settings, "a", tiny_data)
    values = {**config_to_form(base, run_settings), "data.source": "annotated set"}
    cfg = form_to_config(values, base, run_settings)
    assert cfg.data.source == "folder" and cfg.data.root == str(run_settings.data_dir / form.ANNOTATED_DIR)
    assert config_to_form(cfg, run_settings)["data.source"] == "annotated set"


def test_bad_form_values_name_the_field(run_settings, tiny_data):
    base = tiny_config(run_settings, "b", tiny_data)
    with pytest.raises(ValueError, match="epochs"):
        form_to_config({**config_to_form(base, run_settings), "train.epochs": 2.5}, base, run_settings)
    with pytest.raises(ValueError, match="one model per line"):
        form_to_config({**config_to_form(base, run_settings), "models.name": "resnet18 bogus"}, base, run_settings)
    with pytest.raises(ValueError, match="architecture"):
        form_to_config({**config_to_form(base, run_settings), "models.name": " , "}, base, run_settings)
    assert len(FIELDS) == len(config_to_form(base, run_settings))


def test_mixed_models_keep_their_own_mode_and_settings(run_settings):
    cfg = load_preset("paper LoRA", run_settings)
    text = config_to_form(cfg, run_settings)["models.name"]
    assert "mode=linear_probe" in text and "label=smolvlm-256m-lora" in text
    again = form_to_config({**config_to_form(cfg, run_settings), "model.lora.r": 8}, cfg, run_settings)
    assert [(m.name, m.mode, m.label) for m in again.models] == [(m.name, m.mode, m.label) for m in cfg.models]
    assert all(m.lora.r == 8 for m in again.models) and again.models[0].gradient_checkpointing is True


def test_blank_run_name_is_stamped_at_launch_and_never_reuses_a_run(run_settings, monkeypatch):
    cfg = load_preset("small demo (CPU: 5 min alone, up to 1 h busy)", run_settings)
    blank = config_to_form(cfg, run_settings) | {"name": ""}
    monkeypatch.setattr(form.time, "strftime", lambda fmt: "20261201-102210")
    first = form_to_config(blank, cfg, run_settings).name
    assert first == f"{cfg.name}-20261201-102210"
    (run_settings.runs_dir / first).mkdir(parents=True)  # that run was launched; the page is reloaded
    assert form_to_config(blank, cfg, run_settings).name == f"{first}-2"
    named = config_to_form(cfg, run_settings) | {"name": "mine"}
    assert form_to_config(named, cfg, run_settings).name == "mine"


def test_form_offers_every_registered_source_in_its_words(run_settings):
    """The Train form's data-source choices are the sources' registry (plus generated data and the annotated
    set): a source added to trainer.data.sources.SOURCES appears with its title and round-trips."""
    from trainer.data.sources import SOURCES

    for name, source in SOURCES.items():
        assert form.SOURCES[source.title] == name
    assert set(form.SOURCES.values()) == {*SOURCES, "synthetic"}
    base = tiny_config(run_settings, "src", run_settings.data_dir)
    values = {**config_to_form(base, run_settings), "data.source": SOURCES["bach"].title}
    assert form_to_config(values, base, run_settings).data.source == "bach"

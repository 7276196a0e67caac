from pathlib import Path

from histoapp.runs.validate import check_config
from tests.histoapp.runs.tiny import tiny_config
from trainer.config import ExperimentConfig


def _with(cfg: ExperimentConfig, *overrides: str) -> ExperimentConfig:
    return cfg.with_overrides(list(overrides))


def test_a_tiny_cpu_config_passes(run_settings, tiny_data):
    errors, warnings = check_config(
        tiny_config(run_settings, "ok", tiny_data), run_settings, cuda=False, available_families={"cnn"}
    )
    assert errors == [] and warnings == []


def test_qlora_without_cuda_is_refused(run_settings, tiny_data):
    cfg = _with(
        tiny_config(run_settings, "q", tiny_data),
        "model.family=vlm",
        "model.name=/nonexistent-model",
        "model.mode=qlora",
    )
    errors, _ = check_config(cfg, run_settings, cuda=False, available_families={"cnn", "vlm"})
    assert any("QLoRA needs a CUDA GPU" in e for e in errors)
    errors, _ = check_config(cfg, run_settings, cuda=True, available_families={"cnn", "vlm"})
    assert not any("QLoRA" in e for e in errors)


def test_vlm_without_the_vlm_family_is_refused(run_settings, tiny_data):
    cfg = _with(
        tiny_config(run_settings, "v", tiny_data),
        "model.family=vlm",
        "model.name=HuggingFaceTB/SmolVLM-Instruct",
        "model.mode=lora",
    )
    errors, _ = check_config(cfg, run_settings, cuda=False, available_families={"cnn"})
    assert any("'vlm' model family is not available" in e for e in errors)


def test_data_root_missing_or_outside_allowed_roots(run_settings, tiny_data, tmp_path):
    missing = _with(tiny_config(run_settings, "m", tiny_data), f"data.root={Path(tiny_data).parent / 'nope'}")
    errors, _ = check_config(missing, run_settings, cuda=False, available_families={"cnn"})
    assert any("does not exist" in e for e in errors)
    outside = _with(tiny_config(run_settings, "o", tiny_data), "data.root=/etc")
    errors, _ = check_config(outside, run_settings, cuda=False, available_families={"cnn"})
    assert any("outside the allowed data roots" in e for e in errors)


def test_bad_model_and_numbers_are_refused_with_reasons(run_settings, tiny_data):
    cfg = _with(
        tiny_config(run_settings, "bad name!", tiny_data),
        "model.mode=lora",
        "model.name=resnet_does_not_exist",
        "train.epochs=0",
        "data.folds=1",
        "train.lr=-1",
        "data.magnifications=[40X, 999X]",
        "train.optimizer=adamw8bit",
    )
    errors, _ = check_config(cfg, run_settings, cuda=False, available_families={"cnn"})
    text = "\n".join(errors)
    for reason in (
        "run name",
        "CNNs train in mode",
        "not a torchvision architecture",
        "epochs must be at least 1",
        "folds must be at least 2",
        "learning rate must be positive",
        "999X",
        "8-bit optimisers need a CUDA GPU",
    ):
        assert reason in text, reason


def test_pretrained_weights_missing_is_a_warning(run_settings, tiny_data, monkeypatch, tmp_path):
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path / "hub"))
    cfg = _with(tiny_config(run_settings, "p", tiny_data), "model.pretrained=true")
    errors, warnings = check_config(cfg, run_settings, cuda=False, available_families={"cnn"})
    assert errors == [] and any("not in the torch hub cache" in w for w in warnings)


def test_manager_refuses_existing_name_and_foreign_output_dir(manager, run_settings, tiny_data, tmp_path):
    (run_settings.runs_dir / "taken").mkdir(parents=True)
    errors, _ = manager.check(tiny_config(run_settings, "taken", tiny_data))
    assert any("exists already" in e for e in errors)
    errors, _ = manager.check(_with(tiny_config(run_settings, "x", tiny_data), f"output_dir={tmp_path / 'elsewhere'}"))
    assert any("output_dir must be" in e for e in errors)


def test_a_batch_larger_than_a_folds_training_set_is_warned_of(run_settings, tiny_data):
    """256 generated images, 2 folds, 15 % validation: a fold trains on about 108 of them."""
    base = tiny_config(run_settings, "b", tiny_data)
    _, warnings = check_config(_with(base, "train.batch_size=100000"), run_settings, available_families={"cnn"})
    assert any(
        "batch size 100000 is larger than a fold's training set (about 108 of the 256 images" in w for w in warnings
    )
    _, warnings = check_config(_with(base, "train.batch_size=64"), run_settings, available_families={"cnn"})
    assert not any("batch size" in w for w in warnings)

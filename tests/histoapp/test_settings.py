"""Settings read every app variable, at construction (so a launcher or test that sets one is obeyed)."""

from histoapp.settings import DEFAULT_HUB_MODELS, Settings


def test_defaults_and_overrides(monkeypatch, tmp_path):
    for name in ("HISTOAPP_HUB_MODELS", "HISTOAPP_MAX_PARALLEL_RUNS", "HISTOAPP_RUN_THREADS", "HISTOAPP_MAX_UPLOAD_MB"):
        monkeypatch.delenv(name, raising=False)
    s = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")
    assert s.hub_models == list(DEFAULT_HUB_MODELS) and s.max_parallel_runs == 1 and s.run_threads is None
    assert s.max_upload_mb == 50 and s.database_url == f"sqlite:///{tmp_path / 'data' / 'annotations.db'}"
    monkeypatch.setenv("HISTOAPP_HUB_MODELS", " a/b, c/d ,")
    monkeypatch.setenv("HISTOAPP_RUN_THREADS", "2")
    monkeypatch.setenv("HISTOAPP_MAX_UPLOAD_MB", "7")
    s = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")
    assert s.hub_models == ["a/b", "c/d"] and s.run_threads == 2 and s.max_upload_mb == 7


def test_prediction_batch_and_torch_threads(monkeypatch, tmp_path):
    for name in ("HISTOAPP_PREDICT_BATCH", "HISTOAPP_TORCH_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    s = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")
    assert s.predict_batch == 16 and s.torch_threads == 1  # a 2-core machine: one core left to the web server
    monkeypatch.setenv("HISTOAPP_PREDICT_BATCH", "0")  # at least 1: no batching
    monkeypatch.setenv("HISTOAPP_TORCH_THREADS", "0")  # torch's own default
    s = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")
    assert s.predict_batch == 1 and s.torch_threads == 0


def test_run_backend_and_slurm_settings(monkeypatch, tmp_path):
    import pytest

    monkeypatch.setenv("HISTOAPP_RUN_BACKEND", "SLURM")
    monkeypatch.setenv("HISTOAPP_SLURM_GPUS", "2")
    monkeypatch.setenv("HISTOAPP_SLURM_EXTRA", "--qos=long; --mem=32G;")
    s = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")
    assert s.run_backend == "slurm" and s.slurm_gpus == 2 and s.slurm_extra == ["--qos=long", "--mem=32G"]
    monkeypatch.setenv("HISTOAPP_RUN_BACKEND", "kubernetes")
    with pytest.raises(ValueError, match="local, slurm"):
        Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")

"""The trainer's environment variables: one reader, one set of accepted values."""

import pytest

from trainer import env


@pytest.mark.parametrize("value", ["1", "true", "True", "YES", "on"])
def test_every_offline_variable_accepts_the_same_values(monkeypatch, value):
    for name in env.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert env.offline_variable() is None and not env.offline()
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", value)
    assert env.offline_variable() == "TRANSFORMERS_OFFLINE" and env.offline()
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    assert not env.offline()


def test_tiny_vlm_cache_and_endpoint(monkeypatch, tmp_path):
    monkeypatch.setenv("HISTOAPP_TINY_VLM_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert env.tiny_vlm_cache() == tmp_path and env.hf_endpoint() is None

"""A hub id without a network fails within seconds, saying how to give a local folder."""

import time

import pytest

from trainer.models.vlm.loading import ModelUnavailableError, load_model, load_processor, resolve

HUB_ID = "HuggingFaceTB/SmolVLM-256M-Instruct"


def test_offline_hub_id_fails_fast_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache: the model is surely not there
    t0 = time.monotonic()
    with pytest.raises(ModelUnavailableError) as err:
        load_model(HUB_ID)
    assert time.monotonic() - t0 < 5
    message = str(err.value)
    assert HUB_ID in message and "model.name=/path/to/" in message and "offline" in message


def test_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HISTOAPP_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    t0 = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="cannot be reached"):
        load_processor(HUB_ID)
    assert time.monotonic() - t0 < 10


def test_through_the_adapter_the_error_is_a_value_error(monkeypatch, tmp_path):
    from trainer.config import ModelConfig
    from trainer.models import build_adapter

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="local-dir"):
        build_adapter(ModelConfig(family="vlm", name="Qwen/Qwen2-VL-2B-Instruct", mode="lora"))


def test_local_folders(tiny_vlms, tmp_path):
    assert resolve(str(tiny_vlms["idefics3"])) == (str(tiny_vlms["idefics3"]), True)
    with pytest.raises(ModelUnavailableError, match="not found"):
        resolve(str(tmp_path / "missing"))
    with pytest.raises(ModelUnavailableError, match="config.json"):
        resolve(str(tmp_path))

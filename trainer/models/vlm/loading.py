"""Loading a VLM and its processor by hub id or local folder, offline-safe: a model already in the Hugging
Face cache loads without a network; otherwise, offline or with the hub unreachable, the call fails within
seconds with a message saying how to give a local folder (it never waits on a dead network)."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

from trainer.env import hf_endpoint, offline_variable

PROBE_TIMEOUT_S = 5.0


class ModelUnavailableError(ValueError):
    """The model cannot be had (offline, hub unreachable, no such folder). A ValueError so the CLI prints one line."""


def _unavailable(name: str, why: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"VLM {name!r} is not available ({why}). Download it once where there is a network "
        f"(`huggingface-cli download {name} --local-dir /path/to/{name.split('/')[-1]}`), copy that folder here and "
        f"give it with `--set model.name=/path/to/{name.split('/')[-1]}`; or fill the Hugging Face cache "
        f"({_hf_cache()}). For an offline check use a tiny local model: trainer.models.vlm.tiny.build_tiny_vlm."
    )


def _hf_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """A TCP connection to the hub endpoint within ``timeout`` (huggingface_hub's own retries can take minutes)."""
    from huggingface_hub import constants

    url = urlparse(hf_endpoint() or constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve(name: str) -> tuple[str, bool]:
    """(what to pass to ``from_pretrained``, ``local_files_only``). A local folder is used as is; a hub id is
    used from the cache when there, else only when the hub answers."""
    if name.startswith("tiny:"):  # a tiny model built here from its spec (tests, demo)
        from trainer.models.vlm.tiny import tiny_model_folder

        return str(tiny_model_folder(name)), True
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(f"{path} is not a transformers model folder (no config.json)")
        return str(path), True
    if name.startswith(("/", "./", "../", "~")) or name.count("/") > 1:
        raise ModelUnavailableError(f"model folder not found: {path}")
    if _in_cache(name):
        return name, True
    if offline_variable():
        raise _unavailable(name, f"offline mode is set ({offline_variable()}) and it is not in the Hugging Face cache")
    if not hub_reachable():
        raise _unavailable(name, "the Hugging Face hub cannot be reached and it is not in the cache")
    return name, False


def _in_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(name, "config.json")
        return isinstance(hit, str)
    except Exception:  # malformed ids and the like: not cached
        return False


def load_processor(name: str, trust_remote_code: bool = False):
    source, local = resolve(name)  # first: fail fast, before the (slow) transformers import
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(source, local_files_only=local, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise _unavailable(name, f"processor files could not be read: {exc}") from None


def load_model(
    name: str,
    *,
    dtype=None,
    quantization_config=None,
    device_map=None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
):
    """The image-text-to-text model (``AutoModelForImageTextToText``: Idefics3/SmolVLM, Qwen2-VL)."""
    source, local = resolve(name)
    from transformers import AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    kwargs = dict(local_files_only=local, trust_remote_code=trust_remote_code)
    if dtype is not None:
        kwargs["dtype"] = dtype
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if device_map is not None:
        kwargs["device_map"] = device_map
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one bar per checkpoint load would flood run logs
    try:
        return AutoModelForImageTextToText.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise _unavailable(name, f"model files could not be read: {exc}") from None
    finally:
        if was:
            hf_logging.enable_progress_bar()

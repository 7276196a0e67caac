"""The trainer's environment variables, read here and nowhere else in ``trainer/`` (the app's own are in
``histoapp.settings.Settings``; README lists them all). Read at call time, so a test or a launcher that sets
one takes effect at once."""

from __future__ import annotations

import os
from pathlib import Path

# Any of these set to a true value: never reach for a network (hub, torchvision downloads).
OFFLINE_VARIABLES = ("HISTOAPP_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = ("1", "true", "yes", "on")


def offline_variable() -> str | None:
    """The first offline variable that is set (``HF_HUB_OFFLINE`` ...), None when the network may be used."""
    for name in OFFLINE_VARIABLES:
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return None


def offline() -> bool:
    return offline_variable() is not None


def hf_endpoint() -> str | None:
    """``HF_ENDPOINT``: a hub mirror, probed instead of huggingface.co."""
    return os.environ.get("HF_ENDPOINT") or None


def tiny_vlm_cache() -> Path:
    """``HISTOAPP_TINY_VLM_CACHE``: where the tiny offline VLMs (``tiny:...``) are built."""
    return Path(os.environ.get("HISTOAPP_TINY_VLM_CACHE") or Path.home() / ".cache" / "histoapp" / "tiny-vlm")

"""The paper's published figures (``paper_results.json``) and how our model labels map to its rows."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

PAPER_FILE = Path(__file__).with_name("paper_results.json")


@lru_cache(maxsize=1)
def paper() -> dict:
    return json.loads(PAPER_FILE.read_text())


def _tokens(label: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", label.lower())


def paper_model(label: str) -> str | None:
    """The paper's name for one of our model labels, or None: a CNN matches only its plain architecture
    name (``resnet34``: full fine-tuning, as in the paper); a VLM label must contain every token of the rule
    (``SmolVLM-Instruct-lora`` -> ``SmolVLM (LoRA)``)."""
    text = _tokens(label)
    for name, spec in paper()["models"].items():
        if spec["family"] == "cnn" and text == spec["match"][0]:
            return name
        if spec["family"] != "cnn" and all(tok in text for tok in spec["match"]):
            return name
    return None


def paper_figures(label: str, magnification: str) -> dict:
    """The paper's published metrics for (model, magnification): {metric: value}, only those it gives."""
    name = paper_model(label)
    for row in paper()["results"]:
        if row["model"] == name and row["magnification"] == magnification:
            return {k: v for k, v in row.items() if k not in ("model", "magnification") and v is not None}
    return {}


def floor(magnification: str) -> dict:
    for row in paper()["floors"]["rows"]:
        if row["magnification"] == magnification:
            return row
    return {}

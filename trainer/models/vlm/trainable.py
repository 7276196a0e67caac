"""Which weights of a VLM train: the vision side (frozen unless ``model.freeze_vision`` is false), the LoRA
target pattern peft gets, and activation checkpointing for the trained language model."""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

# Sub-modules of the vision side (encoder, and Qwen2-VL's merger which sits inside ``visual``).
VISION_PREFIXES = ("model.vision_model.", "model.visual.")


def lora_target_pattern(model: nn.Module, target_modules: Sequence[str], freeze_vision: bool = True) -> str:
    """A regex over full module names for peft: the named projections, outside the vision encoder unless
    ``freeze_vision`` is false. Fails early when nothing matches (wrong names for this architecture)."""
    names = "|".join(re.escape(t) for t in target_modules)
    vision = "|".join(re.escape(p.rstrip(".")) for p in VISION_PREFIXES)
    pattern = rf"^(?!({vision})\.).*\.({names})$" if freeze_vision else rf".*\.({names})$"
    if not any(re.fullmatch(pattern, n) for n, m in model.named_modules() if isinstance(m, nn.Linear)):
        raise ValueError(
            f"model.lora.target_modules {list(target_modules)} match no linear layer of "
            f"{model.config.model_type}'s language model"
        )
    return pattern


def enable_checkpointing(model) -> None:
    """Activation (gradient) checkpointing, non-reentrant (works with frozen inputs and LoRA)."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

"""Vision-language models (SmolVLM / Idefics3, Qwen2-VL) as classifiers: zero-shot, linear probe, LoRA,
QLoRA, full fine-tuning. ``VLMAdapter`` is imported lazily so ``import trainer.models.vlm.tiny`` stays light."""

from __future__ import annotations


def __getattr__(name):
    if name == "VLMAdapter":
        from trainer.models.vlm.adapter import VLMAdapter

        return VLMAdapter
    raise AttributeError(name)


__all__ = ["VLMAdapter"]

"""Tiny SmolVLM (Idefics3) and Qwen2-VL models built from configs, with a tokenizer and processor made
locally: no download. They run every mode on CPU in seconds (tests, benchmarks) and, a little larger,
make the app's demo VLM. Saved with ``save_pretrained`` so the normal ``from_pretrained`` path loads them.

    folder = build_tiny_vlm("idefics3", "/tmp/tiny-smolvlm")
    cfg = ModelConfig(family="vlm", name=str(folder), mode="lora")

A config can also name one as ``tiny:<family>[:key=value,...]`` (e.g. ``tiny:idefics3:image_size=64``): it
is built once (seeded, so always the same weights) into a cache folder and loaded from there."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from trainer.models.vlm.families import DEFAULT_PROMPT, FAMILIES, LABEL_WORDS, SUBTYPE_WORDS

# Special tokens of the real tokenizers, so the processors and chat templates work unchanged.
_SPECIAL = {
    "idefics3": [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<end_of_utterance>",
        "<fake_token_around_image>",
        "<image>",
        "<global-img>",
    ]
    + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)],
    "qwen2_vl": [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ],
}
# (bos, eos, pad, unk) as in the published tokenizers.
_ROLES = {
    "idefics3": ("<|im_start|>", "<end_of_utterance>", "<|im_end|>", "<|endoftext|>"),
    "qwen2_vl": (None, "<|im_end|>", "<|endoftext|>", None),
}


def _corpus() -> list[str]:
    words = list(LABEL_WORDS.values()) + list(SUBTYPE_WORDS.values())
    lines = [
        DEFAULT_PROMPT,
        "User: Assistant: system user assistant You are a helpful assistant.",
        "Describe this image. What tissue is shown? The image shows breast tissue with cells and stroma.",
        "Which subtype of breast tumour is this? " + " ".join(words),
    ]
    return lines + [f"This is {w}." for w in words] * 4


def build_tokenizer(family: str, vocab_size: int = 400):
    """A byte-level BPE trained here on a few sentences (any text encodes; label words get few tokens),
    wrapped as a transformers fast tokenizer with the family's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = _SPECIAL[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    bos, eos, pad, unk = _ROLES[family]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token=unk,
        additional_special_tokens=[t for t in special if t not in (bos, eos, pad, unk)],
        chat_template=FAMILIES[family].chat_template,
        model_max_length=4096,
    )
    return fast


def build_tiny_vlm(
    family: str,
    out_dir: str | Path,
    *,
    image_size: int = 32,
    patch_size: int = 8,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    vision_hidden_size: int = 32,
    vision_layers: int = 2,
    seed: int = 0,
    dtype: str = "float32",
) -> Path:
    """Build, save and return a randomly initialised ``family`` model folder (``"idefics3"`` | ``"qwen2_vl"``)
    with its processor. Sizes are kept small: ~0.1 M parameters by default."""
    import torch

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    if image_size % (patch_size * 2):
        raise ValueError(f"image_size ({image_size}) must be a multiple of 2 x patch_size ({patch_size})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _SPECIAL[family]}
    bos, eos, pad, _ = _ROLES[family]
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=1024,
        pad_token_id=ids[pad],
        eos_token_id=ids[eos],
        bos_token_id=ids[bos] if bos else None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    if family == "idefics3":
        model, processor = _idefics3(
            tokenizer, ids, text, image_size, patch_size, vision_hidden_size, vision_layers, num_heads
        )
    else:
        model, processor = _qwen2_vl(
            tokenizer, ids, text, image_size, patch_size, vision_hidden_size, vision_layers, num_heads
        )
    model.generation_config.pad_token_id = ids[pad]
    model.generation_config.eos_token_id = ids[eos]
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model.to(getattr(torch, dtype)).save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _idefics3(tokenizer, ids, text, image_size, patch_size, vision_hidden, vision_layers, num_heads):
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    scale = 2  # pixel-shuffle factor of the connector, as in SmolVLM
    config = Idefics3Config(
        text_config={"model_type": "llama", **text},
        vision_config=dict(
            hidden_size=vision_hidden,
            intermediate_size=2 * vision_hidden,
            num_hidden_layers=vision_layers,
            num_attention_heads=max(1, num_heads // 2),
            image_size=image_size,
            patch_size=patch_size,
        ),
        scale_factor=scale,
        image_token_id=ids["<image>"],
        pad_token_id=text["pad_token_id"],
        tie_word_embeddings=False,
    )
    model = Idefics3ForConditionalGeneration(config)
    # One image = one tile at image_size (no splitting into sub-images): image_seq_len tokens.
    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": image_size},
        max_image_size={"longest_edge": image_size},
        do_image_splitting=False,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    seq_len = (image_size // patch_size) ** 2 // scale**2
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=seq_len,
        chat_template=FAMILIES["idefics3"].chat_template,
    )
    return model, processor


def _qwen2_vl(tokenizer, ids, text, image_size, patch_size, vision_hidden, vision_layers, num_heads):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor, Qwen2VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    head_dim = text["hidden_size"] // text["num_attention_heads"]
    quarter = head_dim // 2 // 4  # multimodal rope: (temporal, height, width) sections summing to head_dim / 2
    mrope = [head_dim // 2 - 2 * quarter, quarter, quarter]
    config = Qwen2VLConfig(
        text_config={
            **text,
            "rope_parameters": {"rope_type": "default", "mrope_section": mrope, "rope_theta": 10000.0},
        },
        vision_config=dict(
            depth=vision_layers,
            embed_dim=vision_hidden,
            hidden_size=text["hidden_size"],
            num_heads=max(1, num_heads // 2),
            mlp_ratio=2,
            patch_size=patch_size,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    model = Qwen2VLForConditionalGeneration(config)
    pixels = image_size * image_size  # every image resized to about image_size^2 pixels
    kw = dict(min_pixels=pixels, max_pixels=pixels, patch_size=patch_size, merge_size=2, temporal_patch_size=2)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**kw),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**kw),
        chat_template=FAMILIES["qwen2_vl"].chat_template,
    )
    return model, processor


TINY_PREFIX = "tiny:"


def parse_tiny_spec(name: str) -> tuple[str, dict]:
    """``tiny:idefics3:image_size=64,hidden_size=128`` -> ("idefics3", {"image_size": 64, "hidden_size": 128})."""
    parts = name[len(TINY_PREFIX) :].split(":", 1)
    family = parts[0]
    if family not in FAMILIES:
        raise ValueError(f"{name!r}: family must be one of {', '.join(FAMILIES)}")
    known = {k: p.default for k, p in inspect.signature(build_tiny_vlm).parameters.items() if p.kind == p.KEYWORD_ONLY}
    kwargs: dict = {}
    for item in filter(None, (parts[1].split(",") if len(parts) > 1 else [])):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in known:
            raise ValueError(f"{name!r}: unknown option {key!r}; known: {', '.join(sorted(known))}")
        kwargs[key] = type(known[key])(value.strip())
    return family, kwargs


def tiny_cache_dir() -> Path:
    from trainer.env import tiny_vlm_cache

    return tiny_vlm_cache()


def tiny_model_folder(name: str) -> Path:
    """The folder of the ``tiny:...`` model ``name``, built on first use."""
    import re

    family, kwargs = parse_tiny_spec(name)
    slug = re.sub(r"[^A-Za-z0-9._=-]+", "_", name[len(TINY_PREFIX) :])
    folder = tiny_cache_dir() / slug
    if not (folder / "config.json").is_file():
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        build_tiny_vlm(family, tmp, **kwargs)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process built it first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return folder

"""LoRA vs QLoRA at real size: SmolVLM-256M-Instruct and Qwen2-VL-2B-Instruct architectures built from their
published configs (written below: no download), random weights (speed and memory do not depend on them).

    python bench/vlm_gpu_memory.py                 # parameter counts (CPU, meta device) + GPU measurements
    python bench/vlm_gpu_memory.py --counts-only   # only the counts; runs anywhere

1. Parameters (any machine): total, and trainable with LoRA r=16 on q/k/v/o of the language model (vision
   encoder frozen), counted by peft on a meta-device model (no memory used).
2. GPU (CUDA only): the model is saved once in bf16 and loaded through the trainer's own ``VLMAdapter``
   (mode ``lora``: bf16 base; ``qlora``: 4-bit NF4 base), then optimiser steps at the paper's batch and
   accumulation (batch 4 x 4 micro-batches, paged 8-bit AdamW, gradient checkpointing), each mode in its own
   process. Reported: seconds per optimiser step and peak GPU memory (``torch.cuda.max_memory_allocated``).
   Goal from the issue: QLoRA Qwen2-VL-2B under 8 GiB.
Without CUDA, part 2 ends with a clear message: not measured on such a machine."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# From HuggingFaceTB/SmolVLM-256M-Instruct/config.json (Idefics3): SigLIP-B/16 512 px encoder, pixel shuffle 4,
# SmolLM2-135M language model.
SMOLVLM_256M = {
    "family": "idefics3",
    "image_size": 512,
    "vision": dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=512,
        patch_size=16,
    ),
    "text": dict(
        vocab_size=49280,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=100000.0,
        tie_word_embeddings=False,
    ),
    "scale_factor": 4,
}
# From Qwen/Qwen2-VL-2B-Instruct/config.json: 675 M-parameter ViT (patch 14, merge 2), Qwen2-1.5B language model.
QWEN2_VL_2B = {
    "family": "qwen2_vl",
    "image_size": 448,
    "vision": dict(
        depth=32,
        embed_dim=1280,
        hidden_size=1536,
        mlp_ratio=4,
        num_heads=16,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
    ),
    "text": dict(
        vocab_size=151936,
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0},
    ),
}
MODELS = {"SmolVLM-256M": SMOLVLM_256M, "Qwen2-VL-2B": QWEN2_VL_2B}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
BATCH, ACCUM = 4, 4  # public SmolVLM recipe; the paper's exact figures are not in the material available here


def build(spec: dict, tokenizer=None):
    """(config, model class, processor or None) for ``spec``; special-token ids come from ``tokenizer`` (the
    tiny builder's, with the family's special tokens) so a locally made processor fits the model."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )

    ids = (lambda t: tokenizer.convert_tokens_to_ids(t)) if tokenizer is not None else (lambda t: 3)
    size = spec["image_size"]
    if spec["family"] == "idefics3":
        text = {"model_type": "llama", **spec["text"], "pad_token_id": ids("<|im_end|>") if tokenizer else 2}
        config = Idefics3Config(
            text_config=text,
            vision_config=spec["vision"],
            scale_factor=spec["scale_factor"],
            image_token_id=ids("<image>"),
            tie_word_embeddings=False,
        )
        processor = None
        if tokenizer is not None:
            seq = (size // spec["vision"]["patch_size"]) ** 2 // spec["scale_factor"] ** 2
            ip = Idefics3ImageProcessor(
                size={"longest_edge": size}, max_image_size={"longest_edge": size}, do_image_splitting=False
            )
            processor = Idefics3Processor(image_processor=ip, tokenizer=tokenizer, image_seq_len=seq)
        return config, Idefics3ForConditionalGeneration, processor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    config = Qwen2VLConfig(
        text_config=spec["text"],
        vision_config=spec["vision"],
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    processor = None
    if tokenizer is not None:
        kw = dict(min_pixels=size * size, max_pixels=size * size)
        processor = Qwen2VLProcessor(
            image_processor=Qwen2VLImageProcessor(**kw),
            tokenizer=tokenizer,
            video_processor=Qwen2VLVideoProcessor(**kw),
        )
    return config, Qwen2VLForConditionalGeneration, processor


def counts(spec: dict) -> dict:
    """Total and LoRA-trainable parameters, counted on the meta device (no memory)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from trainer.models.vlm.trainable import lora_target_pattern

    config, cls, _ = build(spec)
    with torch.device("meta"):
        model = cls(config)
    total = sum(p.numel() for p in model.parameters())
    vision = sum(
        p.numel() for n, p in model.named_parameters() if n.startswith(("model.vision_model.", "model.visual."))
    )
    lora = get_peft_model(
        model,
        LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=lora_target_pattern(model, LORA_TARGETS)),
    )
    trainable, _ = lora.get_nb_trainable_parameters()
    return {"total": total, "vision": vision, "lora_trainable": trainable}


def measure(name: str, mode: str, folder: str, steps: int) -> dict:
    """In a child process: load through VLMAdapter, run ``steps`` optimiser steps of BATCH x ACCUM."""
    import numpy as np
    import torch
    from PIL import Image

    from trainer.config import LoRAConfig, ModelConfig, TrainConfig
    from trainer.engine import build_optimizer
    from trainer.models import build_adapter

    torch.cuda.reset_peak_memory_stats()
    cfg = ModelConfig(
        family="vlm",
        name=folder,
        mode=mode,
        lora=LoRAConfig(r=16, alpha=32, dropout=0.05, target_modules=LORA_TARGETS),
        gradient_checkpointing=True,
    )
    adapter = build_adapter(cfg, 2)
    adapter.module.cuda()  # no-op for the 4-bit weights (already placed), moves the rest
    load_mb = torch.cuda.max_memory_allocated() / 2**20
    size = MODELS[name]["image_size"]
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(BATCH)]
    batch = adapter.collate(images, [i % 2 for i in range(BATCH)])
    batch = {"inputs": {k: v.cuda() for k, v in batch["inputs"].items()}, "targets": batch["targets"].cuda()}
    opt = build_optimizer(
        TrainConfig(optimizer="paged_adamw8bit", lr=1e-4), [p for p in adapter.module.parameters() if p.requires_grad]
    )
    adapter.module.train()

    def step():
        for _ in range(ACCUM):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = adapter.loss(batch) / ACCUM
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    trainable, total = adapter.parameter_counts()
    return {
        "model": name,
        "mode": mode,
        "step_s": (time.perf_counter() - t0) / steps,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        "load_mib": load_mb,
        "trainable": trainable,
        "total": total,
        "tokens": int(batch["inputs"]["input_ids"].shape[1]),
        "gpu": torch.cuda.get_device_name(),
    }


def save_random(name: str, folder: Path) -> None:
    import torch

    from trainer.models.vlm.tiny import build_tokenizer

    spec = MODELS[name]
    tokenizer = build_tokenizer(spec["family"])
    config, cls, processor = build(spec, tokenizer)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = cls(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--counts-only", action="store_true")
    ap.add_argument("--_one", nargs=3, metavar=("MODEL", "MODE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._one:
        print(json.dumps(measure(*args._one, args.steps)))
        return 0
    print("| model | total params | vision encoder | LoRA r=16 q/k/v/o trainable |\n|---|---|---|---|")
    for name in args.models:
        c = counts(MODELS[name])
        print(
            f"| {name} | {c['total'] / 1e6:.1f} M | {c['vision'] / 1e6:.1f} M | {c['lora_trainable'] / 1e6:.2f} M |",
            flush=True,
        )
    if args.counts_only:
        return 0
    import torch

    if not torch.cuda.is_available():
        print(
            "\nno CUDA GPU on this machine: LoRA vs QLoRA step time and GPU memory are not measured here "
            "(QLoRA needs bitsandbytes' CUDA kernels). Run this script on a machine with an NVIDIA GPU.",
            file=sys.stderr,
        )
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            folder = Path(tmp) / name
            save_random(name, folder)
            for mode in ("lora", "qlora"):
                cmd = [sys.executable, __file__, "--_one", name, mode, str(folder), "--steps", str(args.steps)]
                out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                if out.returncode:
                    print(f"{name} {mode} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(f"  {name} {mode}: {r['step_s']:.2f} s/step, peak {r['peak_gib']:.2f} GiB", flush=True)
    if not rows:
        return 1
    print(
        f"\nGPU: {rows[0]['gpu']}; batch {BATCH} x {ACCUM} accumulation, paged 8-bit AdamW, gradient checkpointing, bf16 autocast\n"
    )
    print(
        "| model | mode | sequence (tokens) | trainable | s / optimiser step | vs LoRA | peak GPU memory (GiB) | vs LoRA |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        base = next((x for x in rows if x["model"] == r["model"] and x["mode"] == "lora"), None)
        ratio = (lambda k, r=r, base=base: f"{r[k] / base[k]:.2f}x") if base else (lambda k: "n/a")
        print(
            f"| {r['model']} | {r['mode']} | {r['tokens']} | {r['trainable'] / 1e6:.2f} M | {r['step_s']:.2f} | {ratio('step_s')} | "
            f"{r['peak_gib']:.2f} | {ratio('peak_gib')} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

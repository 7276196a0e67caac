"""``VLMAdapter``: SmolVLM (Idefics3) and Qwen2-VL as benign/malignant (or subtype) classifiers.

Modes (``model.mode``):
- ``zero_shot``: nothing trained; class probabilities from the answer words' likelihood after the prompt.
- ``linear_probe``: the VLM frozen; pooled features (mean over the image tokens + the answer position's
  hidden state of the language model) -> a linear head trained with cross-entropy.
- ``lora``: ``peft`` LoRA adapters (r / alpha / dropout / target modules from ``model.lora``) on the language
  model; the vision encoder frozen (paper). Causal-LM loss on the answer tokens.
- ``qlora``: as ``lora`` on a 4-bit NF4 base (``bitsandbytes``); needs CUDA.
- ``full``: every weight trained (the vision encoder too when ``model.freeze_vision`` is false).

A checkpoint folder holds ``adapter.json`` (``{"family": "vlm", ...}``) and, by mode, ``adapter/`` (peft's
``save_pretrained``), ``model/`` (the full model + processor) or ``head.safetensors``; the base model is
named by ``model.name`` (hub id or folder)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from trainer.config import ModelConfig
from trainer.models.base import ADAPTER_FILE, ModelAdapter, first_input, write_adapter_meta
from trainer.models.vlm import scoring
from trainer.models.vlm.families import DEFAULT_PROMPT, Family, class_words, family_for
from trainer.models.vlm.loading import load_model, load_processor
from trainer.models.vlm.trainable import VISION_PREFIXES, enable_checkpointing, lora_target_pattern

PEFT_DIR = "adapter"
MODEL_DIR = "model"
HEAD_FILE = "head.safetensors"


def default_classes(num_classes: int) -> list[str]:
    from trainer.data.records import LABELS, SUBTYPES

    if num_classes == len(LABELS):
        return list(LABELS)
    if num_classes == len(SUBTYPES):
        return list(SUBTYPES)
    raise ValueError(f"a VLM classifier needs 2 (benign/malignant) or 8 (subtype) classes, not {num_classes}")


class VLMModule(nn.Module):
    """Everything trainable in one module for the engine: the (peft-wrapped) VLM and the linear-probe head.
    ``forward`` dispatches so that the accelerate-prepared (DDP) wrapper sees every forward pass."""

    def __init__(self, model: nn.Module, head: nn.Module | None = None, image_token_id: int | None = None):
        super().__init__()
        self.model = model
        self.head = head
        self.image_token_id = image_token_id

    def forward(self, inputs: dict, logits_to_keep: int = 0, features: bool = False) -> torch.Tensor:
        if features:
            return self.head(self.features(inputs))
        return self.model(**inputs, logits_to_keep=logits_to_keep, use_cache=False).logits

    def features(self, inputs: dict) -> torch.Tensor:
        """Frozen pooled features: mean of the last hidden states over the image tokens, and the hidden state at
        the last prompt position (where the answer is predicted), concatenated."""
        with torch.no_grad():
            base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            hidden = base.model(**inputs, use_cache=False).last_hidden_state.float()
            image = (inputs["input_ids"] == self.image_token_id).unsqueeze(-1).float()
            pooled = (hidden * image).sum(1) / image.sum(1).clamp(min=1)
            return torch.cat([pooled, hidden[:, -1]], dim=-1)


class VLMAdapter(ModelAdapter):
    family = "vlm"

    def __init__(self, config: ModelConfig, num_classes: int = 2, *, _checkpoint: Path | None = None):
        super().__init__(config, num_classes)
        if config.trust_remote_code:
            print("notice: model.trust_remote_code=true runs code from the model repository", flush=True)
        self.classes = default_classes(num_classes)
        self.mode = config.mode
        cuda = torch.cuda.is_available()
        if self.mode == "qlora" and not cuda:
            raise ValueError(
                "model.mode=qlora needs a CUDA GPU (4-bit NF4 weights through bitsandbytes); "
                "on this machine use model.mode=lora (same adapters on a full-precision base)"
            )
        meta = json.loads((_checkpoint / ADAPTER_FILE).read_text()) if _checkpoint else {}
        base = str(_checkpoint / MODEL_DIR) if meta.get("weights") == "full" else config.name
        self.base_name = base
        self.processor = load_processor(base, config.trust_remote_code)
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"  # prompts end at the same position: answers are appended on the right
        model = load_model(base, **self._load_kwargs(cuda), trust_remote_code=config.trust_remote_code)
        self.vlm_family: Family = family_for(model.config.model_type)
        self.pad_id = self._pad_id(model)
        self.image_token_id = int(model.config.image_token_id)
        self.prompt_text = self._prompt_text(config.prompt or DEFAULT_PROMPT)
        self.class_tokens = [self._tokens(self.vlm_family.answer_prefix + w) for w in class_words(self.classes)]
        self.end_token = self.tokenizer.convert_tokens_to_ids(self.vlm_family.end_of_turn)
        model = self._prepare(model, meta, _checkpoint)
        head = None
        if self.mode == "linear_probe":
            hidden = model.config.get_text_config().hidden_size
            head = nn.Linear(2 * hidden, num_classes)
            if _checkpoint is not None:
                head.load_state_dict(load_file(str(_checkpoint / HEAD_FILE)))
        self._module = VLMModule(model, head, self.image_token_id)
        self.input_size: int | None = meta.get("input_size")
        if _checkpoint is None:
            trainable, total = self.parameter_counts()
            print(
                f"{config.display_name}: {self.vlm_family.name}, mode {self.mode}: {trainable:,} trainable of {total:,} "
                f"parameters ({100 * trainable / max(total, 1):.2f}%)",
                flush=True,
            )

    # --- building -----------------------------------------------------------------------------------
    def _load_kwargs(self, cuda: bool) -> dict:
        if self.mode == "qlora":
            from transformers import BitsAndBytesConfig

            bf16 = torch.cuda.is_bf16_supported()
            quant = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float16,
            )
            return {"quantization_config": quant, "device_map": {"": torch.cuda.current_device()}}
        # A frozen base is kept in bf16 on a GPU (half the memory); trained weights stay float32 for AdamW.
        frozen_base = self.mode in ("lora", "linear_probe", "zero_shot")
        if cuda and frozen_base and torch.cuda.is_bf16_supported():
            return {"dtype": torch.bfloat16}
        return {"dtype": torch.float32}

    def _prepare(self, model: nn.Module, meta: dict, checkpoint: Path | None) -> nn.Module:
        """Freeze / wrap the model for the mode; with ``checkpoint``, load the trained adapter."""
        cfg = self.config
        if self.mode in ("lora", "qlora"):
            from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

            if self.mode == "qlora":
                model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
            elif cfg.gradient_checkpointing:
                enable_checkpointing(model)
            with warnings.catch_warnings():
                # peft's PeftModel reads transformers' deprecated ``is_gradient_checkpointing`` (theirs, not ours):
                # one FutureWarning per LoRA model, until peft moves to ``is_activation_checkpointing``.
                warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
                if checkpoint is not None:
                    return PeftModel.from_pretrained(model, str(checkpoint / PEFT_DIR), is_trainable=False)
                lora = LoraConfig(
                    r=cfg.lora.r,
                    lora_alpha=cfg.lora.alpha,
                    lora_dropout=cfg.lora.dropout,
                    target_modules=self._lora_targets(model),
                    bias="none",
                )
                return get_peft_model(model, lora)
        if cfg.gradient_checkpointing and self.mode == "full":
            enable_checkpointing(model)
        train_all = self.mode == "full"
        for name, p in model.named_parameters():
            p.requires_grad = train_all and not (cfg.freeze_vision and name.startswith(VISION_PREFIXES))
        return model

    def _lora_targets(self, model: nn.Module) -> str:
        return lora_target_pattern(model, self.config.lora.target_modules, self.config.freeze_vision)

    def _pad_id(self, model) -> int:
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = model.config.get_text_config().pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    def _prompt_text(self, question: str) -> str:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        template = None if getattr(self.processor, "chat_template", None) else self.vlm_family.chat_template
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, chat_template=template)

    def _tokens(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"answer {text!r} tokenizes to nothing")
        return list(ids)

    # --- ModelAdapter --------------------------------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        return self._module

    @property
    def model(self) -> nn.Module:
        """The (peft-wrapped) transformers model."""
        return self._module.model

    def transform(
        self,
        train: bool,
        input_size: int,
        stain: str | None = None,
        color_jitter: float = 0.1,
        hed_jitter: float = 0.0,
    ) -> Callable[[Any], Any]:
        """The CNNs' augmentation (flips, rotations, jitter) and resizing, ending in a PIL image: the processor
        does the model's own resizing and normalisation."""
        from torchvision import transforms as T

        from trainer.data.transforms import build_transforms

        self.input_size = input_size
        kwargs = {"stain": stain} if stain else {}
        return T.Compose(
            [
                build_transforms(
                    input_size,
                    train=train,
                    normalize=False,
                    color_jitter=color_jitter,
                    hed_jitter=hed_jitter,
                    **kwargs,
                ),
                T.ToPILImage(),
            ]
        )

    def collate(self, samples: Sequence[Any], targets: Sequence[int]) -> dict[str, Any]:
        return {"inputs": self.encode(list(samples)), "targets": torch.as_tensor(list(targets), dtype=torch.long)}

    def encode(self, images: Sequence[Any], prompt: str | None = None) -> dict[str, torch.Tensor]:
        """Processor tensors for one prompt per image (left-padded)."""
        text = self.prompt_text if prompt is None else self._prompt_text(prompt)
        images = [_rgb(im) for im in images]
        kwargs = {}
        tile = (getattr(self.processor.image_processor, "max_image_size", None) or {}).get("longest_edge")
        if self.vlm_family.name == "idefics3" and tile and max(max(im.size) for im in images) <= tile:
            # A patch that fits one tile is one tile: SmolVLM's processor would otherwise upscale it to its
            # largest size and split it into up to 16 tiles (over 1,000 image tokens for a 224 px patch).
            kwargs["do_image_splitting"] = False
        enc = self.processor(text=[text] * len(images), images=images, padding=True, return_tensors="pt", **kwargs)
        return {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}

    def _forward(self, inputs: dict, logits_to_keep: int) -> torch.Tensor:
        return self.forward_module(inputs, logits_to_keep)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        if self.mode == "linear_probe":
            return F.cross_entropy(self.forward_module(batch["inputs"], features=True).float(), batch["targets"])
        answers = [self.class_tokens[int(t)] + [self.end_token] for t in batch["targets"]]
        return scoring.answer_loss(self._forward, batch["inputs"], answers, self.pad_id)

    def predict_proba(self, batch: dict[str, Any]) -> torch.Tensor:
        if self.mode == "linear_probe":
            return torch.softmax(self.forward_module(batch["inputs"], features=True).float(), dim=-1)
        return scoring.class_probabilities(self._forward, batch["inputs"], self.class_tokens, self.pad_id)

    @property
    def feature_description(self) -> str:
        if self.mode == "linear_probe":
            return "the linear probe's input: mean image-token and answer-position hidden states"
        return "the language model's final hidden state at the answer position (the input of lm_head)"

    def logits_and_features(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Class scores and features of one pass. A linear probe: its head's logits and the pooled features that
        feed it. Otherwise the class-word log-likelihoods (softmax = ``predict_proba``) and the language model's
        final hidden state at the answer position (the input of ``lm_head`` there, ``first_input``)."""
        inputs = batch["inputs"]
        if self.mode == "linear_probe":
            features = self._module.features(inputs)
            return self._module.head(features).float(), features.float()
        with first_input(self.model.get_output_embeddings()) as box:
            scores = scoring.class_log_likelihoods(self._forward, inputs, self.class_tokens, self.pad_id)
        return scores.float(), box[0][:, 0].float()  # the first kept position: the prompt's last token

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total); for peft models peft's own count (which counts 4-bit weights unpacked)."""
        model = self._module.model
        if hasattr(model, "get_nb_trainable_parameters"):
            trainable, total = model.get_nb_trainable_parameters()
            head = sum(p.numel() for p in self._module.head.parameters()) if self._module.head is not None else 0
            return trainable + head, total + head
        return super().parameter_counts()

    # --- inference helpers for the app ---------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self._module.parameters()).device

    def _image_inputs(self, image, prompt: str | None = None) -> tuple[dict, Any]:
        view = self.transform(False, self.input_size or _default_size(image))(_rgb(image))
        inputs = {k: v.to(self.device) for k, v in self.encode([view], prompt).items()}
        return inputs, view

    @torch.no_grad()
    def predict_image(self, image) -> dict[str, float]:
        """Class name -> probability for one PIL image (or array)."""
        self._module.eval()
        inputs, _ = self._image_inputs(image)
        batch = {"inputs": inputs, "targets": torch.zeros(1, dtype=torch.long)}
        probs = self.predict_proba(batch)[0].cpu().tolist()
        return dict(zip(self.classes, probs, strict=True))

    @torch.no_grad()
    def generate_answer(self, image, prompt: str | None = None, max_new_tokens: int = 32) -> str:
        """The model's free-text answer to the prompt (greedy decoding)."""
        self._module.eval()
        inputs, _ = self._image_inputs(image, prompt)
        out = self.model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.pad_id,
            eos_token_id=self.end_token,
        )
        return self.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    def attention_map(self, image) -> np.ndarray:
        """(H, W) map in [0, 1] over ``image``: how much the answer position attends to each image token."""
        return self.explain_image(image, probabilities=False)[1]

    def explain_image(self, image, probabilities: bool = True) -> tuple[dict[str, float] | None, np.ndarray]:
        """(class -> probability, attention map). When every class word is one token, the label-word logits of
        the attention pass are exactly what ``predict_proba`` scores, so the app gets both from one forward
        pass instead of two; otherwise (or for a linear probe) the probabilities take their own pass."""
        return self.explain_images([image], probabilities)[0]

    @torch.no_grad()
    def explain_images(self, images, probabilities: bool = True) -> list[tuple[dict[str, float] | None, np.ndarray]]:
        """``explain_image`` for several images in one forward pass. The prompt is the same and the views (at
        ``input_size``) are the same size, so no row is padded and each row's results are its single-image ones;
        views of different sizes (no ``input_size`` set) are explained one by one."""
        images = [_rgb(im) for im in images]
        if len({self.input_size or _default_size(im) for im in images}) > 1:
            return [self.explain_images([im], probabilities)[0] for im in images]
        if not probabilities:
            return [(None, m) for m in self._attention_maps(images)[0]]
        out = []
        for logits, _, amap in self.explain_scored(images):
            probs = torch.softmax(torch.as_tensor(logits), dim=-1).tolist()
            out.append((dict(zip(self.classes, probs, strict=True)), amap))
        return out

    @torch.no_grad()
    def explain_scored(self, images, transform=None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(class logits, features, attention map) per image, as ``logits_and_features`` gives them (the OOD check's
        input, ``trainer.trust``), from the attention pass itself when every class word is one token. ``transform``:
        the caller's evaluation transform (``trainer.predict.eval_transform``: stain normalisation included)."""
        images = [_rgb(im) for im in images]
        if len({self.input_size or _default_size(im) for im in images}) > 1:
            return [self.explain_scored([im], transform)[0] for im in images]
        maps, inputs, out, tapped = self._attention_maps(images, tap=True, transform=transform)
        if tapped is not None and self.mode != "linear_probe" and scoring.single_token(self.class_tokens):
            logits = scoring.last_position_log_likelihoods(out.logits[:, -1], self.class_tokens).float()
            features = tapped[:, -1].float()  # logits_to_keep=1: lm_head saw the answer position only
        else:
            logits, features = self.logits_and_features({"inputs": inputs})
        return list(zip(logits.cpu().numpy(), features.cpu().numpy(), maps, strict=True))

    def _attention_maps(self, images, tap: bool = False, transform=None):
        """(maps, inputs, model output, lm_head input or None) of one eager attention pass over ``images``."""
        from trainer.models.vlm.attention import attention_forward, project_attention

        self._module.eval()
        tf = transform or self.transform(False, self.input_size or _default_size(images[0]))
        inputs = {k: v.to(self.device) for k, v in self.encode([tf(im) for im in images]).items()}
        if tap:
            with first_input(self.model.get_output_embeddings()) as box:
                out = attention_forward(self, inputs)
        else:
            box, out = [], attention_forward(self, inputs)
        maps = [project_attention(self, inputs, out.attentions, im.size, row=i) for i, im in enumerate(images)]
        return maps, inputs, out, (box[0] if box else None)

    # --- saving / loading ----------------------------------------------------------------------------
    def _meta(self, weights: str, **extra) -> dict:
        return {
            "family": self.family,
            "mode": self.mode,
            "weights": weights,
            "architecture": self.vlm_family.name,
            "num_classes": self.num_classes,
            "classes": self.classes,
            "class_words": class_words(self.classes),
            "input_size": self.input_size,
            "prompt": self.prompt_text,
            "model": dataclasses.asdict(self.config),
            **extra,
        }

    def save(self, directory: str | Path) -> Path:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar per saved epoch would flood run logs
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model = self._module.model
        if self.mode in ("lora", "qlora"):
            weights = "peft"
            model.save_pretrained(str(directory / PEFT_DIR))
        elif self.mode == "full":
            weights = "full"
            model.save_pretrained(str(directory / MODEL_DIR))
            self.processor.save_pretrained(str(directory / MODEL_DIR))
        elif self.mode == "linear_probe":
            weights = "head"
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in self._module.head.state_dict().items()},
                str(directory / HEAD_FILE),
            )
        else:
            weights = "none"
        trainable, total = self.parameter_counts()
        meta = self._meta(weights, base=self.config.name, trainable_params=trainable, total_params=total)
        write_adapter_meta(directory, meta)
        return directory

    def export(self, directory: str | Path, *, dtype: str | None = None) -> Path:
        """A self-contained ``full`` checkpoint (LoRA merged into the base weights with ``merge_and_unload``),
        optionally cast (``"float16"``: half the size). Loads without the base model."""
        import copy

        directory = Path(directory)
        if self.mode == "linear_probe":
            raise ValueError("a linear probe has no merged form: its checkpoint is the head beside the base model")
        if self.mode == "qlora":
            raise ValueError(
                "merging into 4-bit weights loses precision: export the LoRA adapter, or merge into a bf16 base"
            )
        model = self._module.model
        merged = copy.deepcopy(model).merge_and_unload() if hasattr(model, "merge_and_unload") else copy.deepcopy(model)
        if dtype:
            merged = merged.to(getattr(torch, dtype))
        directory.mkdir(parents=True, exist_ok=True)
        merged.save_pretrained(str(directory / MODEL_DIR))
        self.processor.save_pretrained(str(directory / MODEL_DIR))
        config = dataclasses.replace(self.config, mode="full")
        meta = {
            **self._meta("full", base=self.config.name, merged_from=self.mode),
            "mode": "full",
            "model": dataclasses.asdict(config),
        }
        write_adapter_meta(directory, meta)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> VLMAdapter:
        directory = Path(directory)
        meta_path = directory / ADAPTER_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            raise FileNotFoundError(f"not a VLM checkpoint folder (no readable {ADAPTER_FILE}): {directory}") from None
        if meta.get("family") != "vlm":
            raise ValueError(f"{meta_path}: family {meta.get('family')!r}, not a VLM checkpoint")
        needed = {"peft": PEFT_DIR, "full": MODEL_DIR, "head": HEAD_FILE}.get(meta.get("weights"))
        if needed and not (directory / needed).exists():
            raise FileNotFoundError(f"{directory}: {needed} is missing (the checkpoint is incomplete)")
        config = ModelConfig.from_dict(meta["model"], f"{meta_path}:model")
        adapter = cls(config, int(meta["num_classes"]), _checkpoint=directory)
        if adapter.mode != "qlora":  # 4-bit weights are placed on the GPU when loaded
            adapter._module.to(device)
        adapter._module.eval()
        return adapter


def _rgb(image):
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image or an (H, W, 3) uint8 array, got {type(image).__name__}")
    return image.convert("RGB")


def _default_size(image) -> int:
    return min(_rgb(image).size)

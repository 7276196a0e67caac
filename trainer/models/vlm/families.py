"""What differs between the two VLM families of the paper: model class, chat template, special tokens,
how the answer follows the prompt, where the image tokens sit. Everything else is shared.

- ``idefics3``: SmolVLM (HuggingFaceTB/SmolVLM-256M-Instruct, -500M-Instruct, SmolVLM-Instruct), Idefics3.
- ``qwen2_vl``: Qwen/Qwen2-VL-2B-Instruct (and the other Qwen2-VL sizes)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PROMPT = "Is this breast histopathology image benign or malignant? Answer with one word."

# Answer words the model is scored on / trained to say. Subtype codes (trainer.data.records.SUBTYPES) are
# spelled out: a VLM knows "fibroadenoma", not "F". Several of these tokenize into more than one token.
LABEL_WORDS = {"benign": "benign", "malignant": "malignant"}
SUBTYPE_WORDS = {
    "A": "adenosis",
    "F": "fibroadenoma",
    "PT": "phyllodes tumor",
    "TA": "tubular adenoma",
    "DC": "ductal carcinoma",
    "LC": "lobular carcinoma",
    "MC": "mucinous carcinoma",
    "PC": "papillary carcinoma",
}


@dataclass(frozen=True)
class Family:
    name: str
    model_type: str  # transformers config.model_type
    end_of_turn: str  # token that ends the assistant's answer (trained after the label word)
    answer_prefix: str  # text between the generation prompt and the answer word
    image_token: str  # the placeholder the processor expands to one token per image feature
    chat_template: str  # used when a (tiny, local) processor has none


# The published chat templates of SmolVLM-Instruct and Qwen2-VL-Instruct (image + text messages).
IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}{% set image_count.value = image_count.value + 1 %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

FAMILIES: dict[str, Family] = {
    "idefics3": Family("idefics3", "idefics3", "<end_of_utterance>", " ", "<image>", IDEFICS3_CHAT_TEMPLATE),
    "qwen2_vl": Family("qwen2_vl", "qwen2_vl", "<|im_end|>", "", "<|image_pad|>", QWEN2_VL_CHAT_TEMPLATE),
}
# SmolVLM checkpoints report model_type "idefics3"; SmolVLM2 uses "smolvlm" with the same layout.
MODEL_TYPES = {"idefics3": "idefics3", "smolvlm": "idefics3", "qwen2_vl": "qwen2_vl"}


def family_for(model_type: str) -> Family:
    try:
        return FAMILIES[MODEL_TYPES[model_type]]
    except KeyError:
        raise ValueError(
            f"unsupported VLM architecture {model_type!r}; supported: SmolVLM/Idefics3 and Qwen2-VL "
            f"(model_type {', '.join(sorted(MODEL_TYPES))})"
        ) from None


def class_words(classes: list[str]) -> list[str]:
    """The answer word of each class name (``benign``/``malignant`` or a subtype code)."""
    return [LABEL_WORDS.get(c) or SUBTYPE_WORDS.get(c) or c for c in classes]

"""Classification with a generative model: the class score is the log-likelihood of the class's answer
word(s) after the prompt, read from the next-token logits; labels that tokenize into several tokens are
scored token by token (teacher forcing). Training uses the causal-LM loss on the answer tokens only.

Prompts are left-padded, so every row's prompt ends at the same position and answers are appended on the
right; only the logits of the answer positions are computed (``logits_to_keep``), not the whole vocabulary
at every image token."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

# Processor outputs with one value per token besides input_ids (by name: pixel tensors can have any shape).
PER_TOKEN = ("attention_mask", "mm_token_type_ids", "token_type_ids")
# forward(inputs, logits_to_keep) -> logits (B, logits_to_keep, V)
Forward = Callable[[dict, int], torch.Tensor]


def append_tokens(inputs: dict, continuations: Sequence[Sequence[int]], pad_id: int) -> tuple[dict, torch.Tensor]:
    """Append one token list per row to a left-padded prompt batch. Returns the new inputs and the targets
    (B, K) of the appended positions (-100 where a row's list is shorter than the longest)."""
    ids = inputs["input_ids"]
    b, length = ids.shape
    k = max(len(c) for c in continuations)
    if k == 0:
        raise ValueError("nothing to append")
    cont = torch.full((b, k), pad_id, dtype=ids.dtype, device=ids.device)
    mask = torch.zeros((b, k), dtype=ids.dtype, device=ids.device)
    for i, c in enumerate(continuations):
        cont[i, : len(c)] = torch.as_tensor(list(c), dtype=ids.dtype)
        mask[i, : len(c)] = 1
    targets = torch.where(mask.bool(), cont, torch.full_like(cont, -100))
    out = dict(inputs)
    out["input_ids"] = torch.cat([ids, cont], dim=1)
    for key, value in inputs.items():
        if key in PER_TOKEN and isinstance(value, torch.Tensor) and tuple(value.shape) == (b, length):
            extra = (
                mask.to(value.dtype)
                if key == "attention_mask"
                else torch.zeros((b, k), dtype=value.dtype, device=value.device)
            )
            out[key] = torch.cat([value, extra], dim=1)
    return out, targets


def continuation_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (sum of log-probabilities, number of tokens) of ``targets`` (B, K); ``logits`` are the last
    K+1 positions (the prompt's last position predicts the first appended token)."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    valid = targets != -100
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * valid).sum(dim=1), valid.sum(dim=1)


def answer_loss(forward: Forward, inputs: dict, answers: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    """Causal-LM cross-entropy on the answer tokens only (mean over tokens, as ``labels`` with -100 would give)."""
    extended, targets = append_tokens(inputs, answers, pad_id)
    logits = forward(extended, targets.shape[1] + 1)
    total, count = continuation_logprobs(logits, targets)
    return -total.sum() / count.sum().clamp(min=1)


def single_token(class_tokens: Sequence[Sequence[int]]) -> bool:
    return all(len(t) == 1 for t in class_tokens)


def last_position_log_likelihoods(last_logits: torch.Tensor, class_tokens: Sequence[Sequence[int]]) -> torch.Tensor:
    """(B, C) log p(class word | prompt) from the prompt's last-position logits (single-token class words)."""
    return F.log_softmax(last_logits.float(), dim=-1)[:, [t[0] for t in class_tokens]]


def class_log_likelihoods(
    forward: Forward, inputs: dict, class_tokens: Sequence[Sequence[int]], pad_id: int
) -> torch.Tensor:
    """(B, C) log p(answer words of class c | prompt). Single-token labels: one forward pass; otherwise one
    pass per class with that class's tokens appended."""
    if single_token(class_tokens):
        return last_position_log_likelihoods(forward(inputs, 1)[:, -1], class_tokens)
    b = inputs["input_ids"].shape[0]
    scores = []
    for tokens in class_tokens:
        extended, targets = append_tokens(inputs, [tokens] * b, pad_id)
        scores.append(continuation_logprobs(forward(extended, targets.shape[1] + 1), targets)[0])
    return torch.stack(scores, dim=1)


def class_probabilities(
    forward: Forward, inputs: dict, class_tokens: Sequence[Sequence[int]], pad_id: int
) -> torch.Tensor:
    """(B, C) probabilities over the classes only (softmax of the answer log-likelihoods): they sum to 1."""
    return torch.softmax(class_log_likelihoods(forward, inputs, class_tokens, pad_id), dim=-1)

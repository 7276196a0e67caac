import pytest
import torch
import torch.nn.functional as F

from trainer.models.vlm import scoring


def test_append_tokens_pads_right_and_masks():
    inputs = {
        "input_ids": torch.tensor([[0, 5, 6], [7, 8, 9]]),
        "attention_mask": torch.tensor([[0, 1, 1], [1, 1, 1]]),
        "mm_token_type_ids": torch.tensor([[0, 1, 0], [0, 1, 0]]),
        "pixel_values": torch.zeros(2, 3),
    }
    out, targets = scoring.append_tokens(inputs, [[11], [12, 13]], pad_id=0)
    assert out["input_ids"].tolist() == [[0, 5, 6, 11, 0], [7, 8, 9, 12, 13]]
    assert out["attention_mask"].tolist() == [[0, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert out["mm_token_type_ids"][:, 3:].eq(0).all()
    assert out["pixel_values"] is inputs["pixel_values"]
    assert targets.tolist() == [[11, -100], [12, 13]]


class ToyLM(torch.nn.Module):
    """A causal toy LM: logits depend on the current and the previous token."""

    def __init__(self, vocab=20):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(vocab, 16)
        self.out = torch.nn.Linear(32, vocab)

    def forward(self, inputs, logits_to_keep):
        e = self.emb(inputs["input_ids"])
        prev = torch.cat([torch.zeros_like(e[:, :1]), e[:, :-1]], dim=1)
        logits = self.out(torch.cat([e, prev], dim=-1))
        return logits[:, -logits_to_keep:] if logits_to_keep else logits


def full_sequence_logprob(lm, prompt, tokens):
    ids = torch.tensor([prompt + tokens])
    logp = F.log_softmax(lm({"input_ids": ids}, 0)[0], dim=-1)
    return sum(logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(tokens))


def test_multi_token_labels_are_scored_token_by_token():
    lm = ToyLM()
    prompts = [[1, 2, 3], [4, 5, 6]]
    classes = [[7], [8, 9, 10], [11, 12]]  # 1, 3 and 2 tokens
    inputs = {"input_ids": torch.tensor(prompts), "attention_mask": torch.ones(2, 3, dtype=torch.long)}
    with torch.no_grad():
        ll = scoring.class_log_likelihoods(lm, inputs, classes, pad_id=0)
    expected = [[full_sequence_logprob(lm, p, c) for c in classes] for p in prompts]
    assert torch.allclose(ll, torch.tensor(expected), atol=1e-5)
    probs = torch.softmax(ll, -1)
    assert torch.allclose(probs.sum(-1), torch.ones(2))


def test_single_token_fast_path_matches_general_path():
    lm = ToyLM()
    inputs = {"input_ids": torch.tensor([[1, 2, 3]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}
    with torch.no_grad():
        fast = scoring.class_log_likelihoods(lm, inputs, [[7], [8]], pad_id=0)
        general = torch.stack([scoring.continuation_logprobs(*_ext(lm, inputs, [t]))[0] for t in (7, 8)], dim=1)
    assert torch.allclose(fast, general, atol=1e-6)


def _ext(lm, inputs, tokens):
    ext, targets = scoring.append_tokens(inputs, [tokens], pad_id=0)
    return lm(ext, targets.shape[1] + 1), targets


def test_answer_loss_is_mean_token_cross_entropy():
    lm = ToyLM()
    inputs = {"input_ids": torch.tensor([[1, 2, 3], [4, 5, 6]])}
    answers = [[7, 19], [8, 9, 19]]
    loss = scoring.answer_loss(lm, inputs, answers, pad_id=0)
    total = sum(full_sequence_logprob(lm, p, a) for p, a in zip([[1, 2, 3], [4, 5, 6]], answers, strict=True))
    assert loss.item() == pytest.approx(-total / 5, rel=1e-5)

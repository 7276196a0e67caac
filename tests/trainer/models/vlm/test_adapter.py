"""Every mode on both tiny families: training lowers the loss on a fixed batch, probabilities are proper,
LoRA trains only its adapters, checkpoints reload to identical outputs."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from tests.trainer.models.vlm.conftest import FAMILIES, batch_of

TRAINABLE_MODES = ["linear_probe", "lora", "full"]


def train_steps(adapter, batch, steps=8, lr=1e-2):
    params = [p for p in adapter.module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    adapter.module.train()
    losses = []
    for _ in range(steps):
        loss = adapter.loss(batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    adapter.module.eval()
    return losses


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", TRAINABLE_MODES)
def test_training_lowers_the_loss_on_a_fixed_batch(make_adapter, patches, family, mode):
    adapter = make_adapter(family, mode, lora={"dropout": 0.0})
    batch = batch_of(adapter, patches)
    losses = train_steps(adapter, batch, steps=10)
    assert all(np.isfinite(losses))
    # LoRA on a random 2-layer model with a frozen random output layer plateaus early: a 10% drop is the bar.
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["zero_shot"] + TRAINABLE_MODES)
def test_probabilities_sum_to_one_and_give_an_auc(make_adapter, patches, family, mode):
    adapter = make_adapter(family, mode)
    with torch.no_grad():
        probs = adapter.predict_proba(batch_of(adapter, patches))
    assert probs.shape == (4, 2)
    assert torch.allclose(probs.sum(-1), torch.ones(4), atol=1e-5)
    assert ((probs >= 0) & (probs <= 1)).all()
    auc = roc_auc_score(patches[1], probs[:, 1].numpy())
    assert 0.0 <= auc <= 1.0


def test_subtype_labels_span_several_tokens(make_adapter, patches):
    adapter = make_adapter("idefics3", "zero_shot", num_classes=8)
    assert adapter.classes[4] == "DC"
    assert max(len(t) for t in adapter.class_tokens) > 1  # "ductal carcinoma" is several tokens
    with torch.no_grad():
        probs = adapter.predict_proba(batch_of(adapter, patches))
    assert probs.shape == (4, 8)
    assert torch.allclose(probs.sum(-1), torch.ones(4), atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("mode", "classes"), [("zero_shot", 2), ("linear_probe", 2), ("lora", 2), ("zero_shot", 8)])
def test_logits_and_features_come_from_the_scoring_pass(make_adapter, patches, family, mode, classes):
    adapter = make_adapter(family, mode, num_classes=classes)
    hidden = adapter.model.config.get_text_config().hidden_size
    with torch.no_grad():
        batch = batch_of(adapter, patches)
        logits, features = adapter.logits_and_features(batch)
        probs = adapter.predict_proba(batch)
    assert logits.shape == (4, classes) and torch.allclose(torch.softmax(logits, -1), probs, atol=1e-5)
    assert features.shape == (4, 2 * hidden if mode == "linear_probe" else hidden)
    assert torch.isfinite(features).all() and not adapter.model.get_output_embeddings()._forward_pre_hooks


def test_zero_shot_trains_nothing(make_adapter):
    trainable, total = make_adapter("qwen2_vl", "zero_shot").parameter_counts()
    assert trainable == 0 and total > 0


def test_parameter_counts_per_mode(make_adapter):
    counts = {m: make_adapter("idefics3", m).parameter_counts() for m in ["zero_shot", "linear_probe", "lora", "full"]}
    assert counts["zero_shot"][0] == 0
    assert 0 < counts["linear_probe"][0] < counts["lora"][0] < counts["full"][0] < counts["full"][1]
    assert counts["full"][1] == counts["zero_shot"][1]  # full leaves only the frozen vision encoder out


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_trains_only_adapter_weights(make_adapter, patches, family):
    adapter = make_adapter(family, "lora", lora={"r": 4, "alpha": 8})
    model = adapter.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert not any(("vision_model" in n or "visual" in n) for n in trainable)  # vision encoder frozen
    peft_trainable, peft_total = model.get_nb_trainable_parameters()
    assert adapter.parameter_counts() == (peft_trainable, peft_total)
    assert sum(p.numel() for n, p in model.named_parameters() if n in trainable) == peft_trainable
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n not in trainable}
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if n in trainable}
    train_steps(adapter, batch_of(adapter, patches), steps=3)
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)  # base weights unchanged
    assert any(not torch.equal(lora_before[n], after[n]) for n in lora_before)


def test_lora_targets_must_exist(make_adapter):
    with pytest.raises(ValueError, match="match no linear layer"):
        make_adapter("idefics3", "lora", lora={"target_modules": ["not_a_layer"]})


def test_qlora_needs_cuda(make_adapter):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: QLoRA is exercised by bench/vlm_gpu_memory.py")
    with pytest.raises(ValueError, match="CUDA"):
        make_adapter("qwen2_vl", "qlora")


@pytest.mark.parametrize(
    "family,mode",
    [
        ("idefics3", "lora"),
        ("qwen2_vl", "lora"),
        ("idefics3", "full"),
        ("qwen2_vl", "linear_probe"),
        ("idefics3", "zero_shot"),
    ],
)
def test_checkpoints_reload_with_identical_outputs(make_adapter, patches, tmp_path, family, mode):
    from trainer.evaluate import load_checkpoint

    adapter = make_adapter(family, mode)
    batch = batch_of(adapter, patches)
    if mode != "zero_shot":
        train_steps(adapter, batch, steps=2)
    with torch.no_grad():
        expected = adapter.predict_proba(batch)
    adapter.save(tmp_path / "best")
    meta = json.loads((tmp_path / "best" / "adapter.json").read_text())
    assert meta["family"] == "vlm" and meta["mode"] == mode
    if mode == "lora":
        assert (tmp_path / "best" / "adapter" / "adapter_model.safetensors").is_file()  # peft's save_pretrained
    loaded, _ = load_checkpoint(tmp_path / "best", device="cpu")
    assert type(loaded).__name__ == "VLMAdapter" and loaded.mode == mode
    with torch.no_grad():
        got = loaded.predict_proba(batch_of(loaded, patches))
    assert torch.allclose(got, expected, atol=1e-6)


def test_merged_export_matches_the_adapter(make_adapter, patches, tmp_path):
    from trainer.evaluate import load_checkpoint

    adapter = make_adapter("qwen2_vl", "lora")
    batch = batch_of(adapter, patches)
    train_steps(adapter, batch, steps=2)
    with torch.no_grad():
        expected = adapter.predict_proba(batch)
    adapter.export(tmp_path / "merged")
    merged, _ = load_checkpoint(tmp_path / "merged", device="cpu")
    assert merged.mode == "full" and not hasattr(merged.model, "peft_config")
    with torch.no_grad():
        assert torch.allclose(merged.predict_proba(batch_of(merged, patches)), expected, atol=1e-4)


def test_incomplete_checkpoint_is_reported(make_adapter, tmp_path):
    from trainer.models.vlm.adapter import VLMAdapter

    make_adapter("idefics3", "linear_probe").save(tmp_path)
    (tmp_path / "head.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="head.safetensors"):
        VLMAdapter.load(tmp_path)


def test_a_patch_that_fits_one_tile_is_not_split(make_adapter, patches):
    """SmolVLM's processor upscales and tiles images by default; a patch within one tile stays one tile."""
    adapter = make_adapter("idefics3", "zero_shot")
    ip = adapter.processor.image_processor
    ip.do_image_splitting, ip.size = True, {"longest_edge": 4 * ip.max_image_size["longest_edge"]}
    view = adapter.transform(False, 32)(patches[0][0])
    inputs = adapter.encode([view])
    assert int((inputs["input_ids"] == adapter.image_token_id).sum()) == adapter.processor.image_seq_len
    assert inputs["pixel_values"].shape[1] == 1  # one tile


@pytest.mark.parametrize("family,mode", [("qwen2_vl", "lora"), ("idefics3", "full")])
def test_gradient_checkpointing_trains_the_same(make_adapter, patches, family, mode):
    plain = make_adapter(family, mode, lora={"dropout": 0.0})
    checkpointed = make_adapter(family, mode, lora={"dropout": 0.0}, gradient_checkpointing=True)
    base = checkpointed.model if mode == "full" else checkpointed.model.get_base_model()
    assert any(getattr(m, "gradient_checkpointing", False) for m in base.modules())
    a = train_steps(plain, batch_of(plain, patches), steps=3)
    b = train_steps(checkpointed, batch_of(checkpointed, patches), steps=3)
    assert np.allclose(a, b, rtol=1e-4), (a, b)

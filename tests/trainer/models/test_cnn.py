"""torchvision CNNs: heads for 2 / 8 classes, any architecture by name, weights without pickle, clear errors offline."""

from __future__ import annotations

import pickle

import pytest
import torch

from trainer.config import ModelConfig
from trainer.models.cnn import CNNAdapter, WeightsUnavailableError, build_cnn, resnet_stride


@pytest.mark.parametrize("name", ["resnet18", "alexnet", "mobilenet_v3_small"])
@pytest.mark.parametrize("classes", [2, 8])
def test_any_torchvision_model_gets_a_new_head(name, classes):
    model = build_cnn(name, classes).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, classes)


def test_unknown_architecture_suggests_names():
    with pytest.raises(ValueError, match="unknown torchvision model 'resnet35'.*resnet18"):
        build_cnn("resnet35")


def test_pretrained_offline_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HISTOAPP_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty torch hub cache
    with pytest.raises(WeightsUnavailableError, match="pretrained=false"):
        CNNAdapter(ModelConfig(name="resnet18", pretrained=True))
    assert not (tmp_path / "hub").exists() or not any((tmp_path / "hub").rglob("*.pth"))


def test_local_weights_file_is_read_without_pickle(tmp_path):
    source = build_cnn("resnet18", 1000)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    model = build_cnn("resnet18", 2, weights_path=str(tmp_path / "resnet18.pth"))
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert model.fc.out_features == 2  # the 1000-class ImageNet head is dropped, a new one made
    # A file that needs unpickling arbitrary objects is refused (torch.load(weights_only=True)).
    torch.save({"state_dict": source.state_dict(), "cfg": _Custom()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="not a loadable weights file"):
        build_cnn("resnet18", 2, weights_path=str(tmp_path / "evil.pth"))
    with pytest.raises(FileNotFoundError):
        build_cnn("resnet18", 2, weights_path=str(tmp_path / "missing.pth"))


class _Custom:
    pass


def test_too_small_input_for_the_architecture_is_clear():
    adapter = CNNAdapter(ModelConfig(name="alexnet", pretrained=False))
    with pytest.raises(ValueError, match="alexnet cannot take 32 px"):
        adapter.transform(True, 32)
    adapter.transform(True, 64)


def test_checkpoint_round_trip_loads_without_pickle(tmp_path, monkeypatch):
    adapter = CNNAdapter(ModelConfig(name="resnet18", pretrained=False), 2)
    adapter.transform(False, 48)
    adapter.module.eval()
    x = torch.rand(3, 3, 48, 48)
    batch = adapter.collate(list(x), [0, 1, 0])
    with torch.no_grad():
        before = adapter.predict_proba(batch)
    folder = adapter.save(tmp_path / "best")
    assert sorted(p.name for p in folder.iterdir()) == ["adapter.json", "model.safetensors"]

    def refuse(*a, **k):
        raise AssertionError("a checkpoint must load without unpickling")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    from trainer.evaluate import load_checkpoint

    loaded, meta = load_checkpoint(tmp_path, device="cpu")  # the fold folder: best/ is found inside
    assert isinstance(loaded, CNNAdapter) and loaded.input_size == 48 and meta == {}
    with torch.no_grad():
        assert torch.allclose(loaded.predict_proba(batch), before, atol=1e-6)
    assert before.sum(dim=1) == pytest.approx(torch.ones(3))


def test_convolutions_run_channels_last_and_give_the_same_answer():
    """The adapter keeps the module and its batches channels_last (faster CPU convolutions); the logits are those
    of the default layout, and what is saved is contiguous."""
    adapter = CNNAdapter(ModelConfig(name="resnet18", pretrained=False), 2)
    adapter.module.eval()
    batch = adapter.collate(list(torch.rand(2, 3, 40, 40)), [0, 1])
    assert batch["pixel_values"].is_contiguous(memory_format=torch.channels_last)
    assert adapter.module.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = adapter.module(batch["pixel_values"])
        adapter.module.to(memory_format=torch.contiguous_format)
        plain = adapter.module(batch["pixel_values"].contiguous())
    assert torch.allclose(fast, plain, atol=1e-5)


def test_linear_probe_trains_only_the_head():
    adapter = CNNAdapter(ModelConfig(name="resnet18", pretrained=False, mode="linear_probe"), 2)
    trainable, total = adapter.parameter_counts()
    assert trainable == 512 * 2 + 2 and total > 10 * trainable
    with pytest.raises(ValueError, match="mode"):
        CNNAdapter(ModelConfig(name="resnet18", pretrained=False, mode="lora"))


def test_load_checkpoint_resolves_classes_input_size_and_device(tmp_path):
    from trainer.data.records import SUBTYPES
    from trainer.models import load_checkpoint

    (tmp_path / "best" / "nothing_here").mkdir(parents=True)
    adapter = CNNAdapter(ModelConfig(name="resnet18", pretrained=False), 8)
    adapter.transform(False, 40)
    adapter.save(tmp_path / "best")
    ckpt = load_checkpoint(tmp_path, device="cpu")  # no engine.json: every fallback applies
    assert ckpt.path == tmp_path / "best" and ckpt.device == "cpu" and ckpt.meta == {}
    assert ckpt.input_size == 40 and ckpt.classes == list(SUBTYPES)
    (tmp_path / "best" / "engine.json").write_text('{"classes": ["a", "b"], "input_size": 64}')
    ckpt = load_checkpoint(tmp_path / "best", device="cpu")
    assert ckpt.classes == ["a", "b"] and ckpt.input_size == 64
    with pytest.raises(FileNotFoundError, match="adapter.json"):
        load_checkpoint(tmp_path / "best" / "nothing_here", device="cpu")


@pytest.mark.parametrize(("name", "dim"), [("resnet18", 512), ("alexnet", 4096), ("mobilenet_v3_small", 1024)])
def test_logits_and_penultimate_features_from_one_pass(name, dim):
    adapter = CNNAdapter(ModelConfig(name=name, pretrained=False))
    adapter.module.eval()
    batch = adapter.collate([torch.rand(3, 64, 64) for _ in range(3)], [0, 1, 0])
    with torch.no_grad():
        logits, features = adapter.logits_and_features(batch)
        probs = adapter.predict_proba(batch)
        head = adapter.module.get_submodule(adapter.head_name)
        assert torch.allclose(head(features), logits, atol=1e-5)  # they are the head's input
    assert features.shape == (3, dim) and torch.allclose(torch.softmax(logits, -1), probs, atol=1e-6)
    assert not adapter.module.get_submodule(adapter.head_name)._forward_pre_hooks  # the tap is removed


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_output_stride_keeps_a_finer_map_and_the_weights(name):
    plain = build_cnn(name, 2).eval()
    os16 = build_cnn(name, 2, output_stride=16).eval()
    os16.load_state_dict(plain.state_dict())  # same parameters: only strides change
    feats = {}
    os16.layer4.register_forward_hook(lambda m, i, o: feats.update(os16=o.shape))
    plain.layer4.register_forward_hook(lambda m, i, o: feats.update(plain=o.shape))
    with torch.no_grad():
        x = torch.randn(1, 3, 64, 64)
        assert os16(x).shape == plain(x).shape == (1, 2)
    assert feats["plain"][-2:] == (2, 2) and feats["os16"][-2:] == (4, 4)
    assert resnet_stride(plain) == 32 and resnet_stride(os16) == 16
    assert resnet_stride(build_cnn(name, 2, output_stride=8)) == 8


def test_output_stride_is_refused_where_it_does_not_apply():
    with pytest.raises(ValueError, match="ResNets only"):
        build_cnn("alexnet", 2, output_stride=16)
    with pytest.raises(ValueError, match="32, 16 or 8"):
        build_cnn("resnet18", 2, output_stride=12)


def test_output_stride_survives_save_and_load(tmp_path):
    adapter = CNNAdapter(ModelConfig(name="resnet18", pretrained=False, output_stride=16))
    adapter.transform(False, 64)
    loaded = CNNAdapter.load(adapter.save(tmp_path / "ckpt"))
    assert loaded.config.output_stride == 16 and loaded.module.layer4[0].conv1.stride == (1, 1)
    x = torch.randn(2, 3, 64, 64)
    adapter.module.eval()
    torch.testing.assert_close(loaded.module(x), adapter.module(x))


def test_init_from_a_checkpoint_folder(tmp_path):
    """model.init_from loads a saved CNN (safetensors, through load_checkpoint) into a new model: every weight; the
    head too when the classes match; another architecture or family is refused by name."""
    from trainer.models import build_adapter

    src = CNNAdapter(ModelConfig(name="resnet18", pretrained=False), 2)
    src.transform(False, 32)
    folder = src.save(tmp_path / "best")
    want = src.module.state_dict()
    same = build_adapter(ModelConfig(name="resnet18", pretrained=True, init_from=str(tmp_path)))  # no download
    assert all(torch.equal(v, want[k]) for k, v in same.module.state_dict().items())
    eight = build_adapter(ModelConfig(name="resnet18", pretrained=False, init_from=str(folder)), 8)
    assert eight.module.fc.weight.shape == (8, 512) and torch.equal(eight.module.conv1.weight, want["conv1.weight"])
    with pytest.raises(ValueError, match="cannot start a CNN 'resnet34'"):
        build_adapter(ModelConfig(name="resnet34", pretrained=False, init_from=str(folder)))
    with pytest.raises(FileNotFoundError, match="checkpoint folder not found"):
        build_adapter(ModelConfig(name="resnet18", pretrained=False, init_from=str(tmp_path / "none")))
    with pytest.raises(ValueError, match="init_from starts a CNN"):
        build_adapter(ModelConfig(family="vlm", name="x", mode="lora", init_from=str(folder)))
    # The new model's own checkpoint loads on its own (the source is not read again).
    eight.transform(False, 32)
    eight.save(tmp_path / "new")
    folder.joinpath("model.safetensors").unlink()
    assert CNNAdapter.load(tmp_path / "new").num_classes == 8

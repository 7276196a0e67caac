"""The moving average of the weights (``train.ema_decay``): its arithmetic, the swap for validation, and a run
that validates and keeps the averaged weights, stops and resumes with them."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from trainer.config import ExperimentConfig
from trainer.cv import run_experiment
from trainer.engine.ema import UPDATES_KEY, WeightEMA

from ..conftest import tiny_config
from ..test_cv import _stop_after_first_epoch_of


def _module() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    m[0].bias.requires_grad_(False)  # frozen: not averaged
    return m


def test_update_is_the_warmed_up_exponential_average():
    m = _module()
    ema = WeightEMA(m, decay=0.99)
    assert "0.bias" not in ema.shadow and "1.running_mean" in ema.shadow
    w0 = m[0].weight.detach().clone()
    with torch.no_grad():
        m[0].weight.add_(1.0)
        m[1].num_batches_tracked.fill_(7)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0): the first step mostly follows
    ema.update(m)
    torch.testing.assert_close(ema.shadow["0.weight"], 0.1 * w0 + 0.9 * (w0 + 1.0))
    assert int(ema.shadow["1.num_batches_tracked"]) == 7  # integer buffers are copied
    ema.updates = 10_000
    assert ema.current_decay() == 0.99  # the warm-up is over


def test_applied_swaps_the_average_in_and_restores_the_weights():
    m = _module()
    ema = WeightEMA(m, decay=0.5)
    raw = {k: v.detach().clone() for k, v in m.state_dict().items()}
    with torch.no_grad():
        for v in ema.shadow.values():
            if v.is_floating_point():
                v.add_(3.0)
    with ema.applied(m):
        torch.testing.assert_close(m[0].weight, raw["0.weight"] + 3.0)
        torch.testing.assert_close(m[0].bias, raw["0.bias"])  # not tracked: untouched
    for k, v in m.state_dict().items():
        assert torch.equal(v, raw[k]), k


def test_state_round_trip_and_refuses_another_model():
    m = _module()
    ema = WeightEMA(m, decay=0.9)
    ema.update(m)
    ema.update(m)
    other = WeightEMA(_module(), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 2
    for k in ema.shadow:
        assert torch.equal(other.shadow[k], ema.shadow[k])
    with pytest.raises(ValueError, match="does not fit"):
        WeightEMA(nn.Linear(3, 4), 0.9).load_state_dict(ema.state_dict())
    with pytest.raises(ValueError, match="ema_decay"):
        WeightEMA(m, decay=1.0)


def test_a_run_keeps_the_averaged_weights_and_resumes_with_them(tmp_path, tiny_data, monkeypatch):
    cfg = ExperimentConfig.from_dict(tiny_config(tmp_path, tiny_data, epochs=3, ema_decay=0.9))
    with monkeypatch.context() as m:
        _stop_after_first_epoch_of(0, m)
        assert run_experiment(cfg, progress=False)["state"] == "stopped"
    last = cfg.run_dir / "resnet18" / "40X" / "fold0" / "last"
    state = json.loads((last / "trainer_state.json").read_text())
    ema = load_file(str(last / "ema.safetensors"))
    assert int(ema.pop(UPDATES_KEY)) == state["global_step"] > 0  # one update per optimiser step
    best, raw = load_file(str(last / "best.safetensors")), load_file(str(last / "model.safetensors"))
    assert best.keys() == ema.keys()
    # Epoch 0 is the best so far: what was kept is the average, not the raw weights it was trained to.
    assert all(torch.equal(best[k], ema[k]) for k in ema)
    assert not torch.equal(best["fc.weight"], raw["fc.weight"])

    done = run_experiment(cfg, progress=False)
    assert done["state"] == "finished" and done["rows"][0]["n_folds"] == 2
    fit = json.loads((last.parent / "metrics.json").read_text())["fit"]
    assert fit["resumed"] is True and fit["epochs"] == 3

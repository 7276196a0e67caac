import pytest
import torch

from trainer.config import TrainConfig
from trainer.engine import build_optimizer


@pytest.mark.parametrize("name", ["adamw8bit", "paged_adamw8bit"])
def test_8bit_optimizers_fall_back_to_adamw_on_cpu(name, capsys):
    if torch.cuda.is_available():
        pytest.skip("on a GPU the bitsandbytes optimiser is used")
    opt = build_optimizer(TrainConfig(optimizer=name, lr=0.01), [torch.nn.Parameter(torch.zeros(3))])
    assert type(opt) is torch.optim.AdamW and opt.defaults["lr"] == 0.01
    assert "plain AdamW" in capsys.readouterr().out


def test_no_trainable_parameters_is_an_error():
    with pytest.raises(ValueError, match="no trainable"):
        build_optimizer(TrainConfig(), [])

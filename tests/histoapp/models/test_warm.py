"""The warm-up: the default models load in the background, once; a request during it waits, then succeeds."""

import threading
import time

import pytest

from histoapp.models.registry import ModelRegistry
from histoapp.models.warm import Warmup
from histoapp.settings import Settings
from histoapp.ui import api


class SlowLoader:
    """``trainer.models.load_checkpoint`` that holds until ``release`` is set (so a busy machine cannot end the load
    before the request under test starts) and counts its calls."""

    def __init__(self):
        from trainer.models import load_checkpoint

        self.real, self.calls = load_checkpoint, []
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, path, **kw):
        self.calls.append(str(path))
        self.entered.set()
        self.release.wait(60)
        return self.real(path, **kw)


@pytest.fixture
def app_ctx(tmp_path, trained_run):
    from histoapp.ui.app import AppContext

    settings = Settings(runs_dir=trained_run, data_dir=tmp_path / "data", hub_models=[])
    ctx = AppContext(settings, warm=True)
    ctx.__dict__["registry"] = ModelRegistry(settings, assets_dir=tmp_path / "none", hub_models=[])
    return ctx


def test_a_request_during_the_warm_up_waits_for_its_load_and_succeeds(app_ctx, synthetic_records, monkeypatch):
    import trainer.models

    slow = SlowLoader()
    monkeypatch.setattr(trainer.models, "load_checkpoint", slow)
    warmup = app_ctx.warmup
    assert warmup.state == "idle" and "loading models" in warmup.status()
    warmup.start()
    assert slow.entered.wait(60), "the warm-up did not start loading"
    assert not warmup.over
    t0 = time.perf_counter()
    threading.Timer(1.0, slow.release.set).start()  # the load ends 1 s after the request starts
    (result,) = api.predict_batch(app_ctx, [synthetic_records[0].path], vlm="")  # the run's CNN, the default
    waited = time.perf_counter() - t0
    assert result["error"] == "" and result["cnn"]["label"] in ("benign", "malignant")
    assert waited > 0.5, "the request did not wait for the load under way"
    assert len(slow.calls) == 1, "the request started a second load"
    assert warmup.wait(60) and warmup.state == "ready" and "Models ready" in warmup.status()
    assert warmup.models == [app_ctx.registry.list("cnn")[0].name] and len(slow.calls) == 1


def test_a_failed_warm_up_says_so_and_leaves_loading_to_the_first_prediction(tmp_path):
    reg = ModelRegistry(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"), hub_models=[])
    warmup = Warmup(reg, lambda: ["run:no/such/model"]).start()
    assert warmup.wait(30) and warmup.state == "failed"
    assert "KeyError" in warmup.error and "load on the first prediction" in warmup.status()
    assert Warmup(reg, lambda: []).wait(0)  # never started: nothing to wait for

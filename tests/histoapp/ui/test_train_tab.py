"""The Train tab's handlers drive a real run: launch -> process + run folder, curve data grows, stop -> stopped,
resume -> finished (the interrupted fold resumed, finished folds skipped)."""

import json

import pytest

from histoapp.runs.form import FIELDS, config_to_form
from histoapp.runs.live import curves
from histoapp.runs.process import pid_alive
from histoapp.ui.tabs import train
from tests.histoapp.runs.tiny import tiny_config, wait_for


@pytest.fixture
def ctx(runs_ctx):
    """The app context of these tests (see conftest: runs_ctx)."""
    return runs_ctx


def _form(ctx, cfg, **changes):
    values = {**config_to_form(cfg, ctx.settings), **changes}
    return cfg.to_dict(), [values[k] for k in FIELDS]


def _steps(ctx, name):
    return len(curves(ctx.settings.runs_dir / name)["steps"])


@pytest.mark.slow
def test_launch_watch_stop_resume_from_the_tab(ctx, tiny_data):
    base, values = _form(ctx, tiny_config(ctx.settings, "tab-run", tiny_data, epochs=3, batch_size=2, max_steps=16))
    message, run_update = train.launch(ctx, base, *values)
    assert "🚀" in message and run_update["value"] == "tab-run"
    run_dir = ctx.settings.runs_dir / "tab-run"
    info = ctx.runs.info("tab-run")
    assert run_dir.is_dir() and (run_dir / "config.yaml").is_file() and pid_alive(info.pid)

    # Curve data grows while it runs, and the live view plots it.
    first = wait_for(lambda: _steps(ctx, "tab-run") >= 2 and _steps(ctx, "tab-run"), 180, what="the first logged steps")
    wait_for(lambda: _steps(ctx, "tab-run") > first, 60, what="more steps")
    status, loss_fig, val_fig, log, history = train.live_view(ctx, "tab-run")
    assert "running" in status and "ETA" in status and "images/s" in status
    assert len(loss_fig.data[0].x) >= first and "run folder:" in log
    assert history.loc[history["run"] == "tab-run", "state"].item() == "running"

    message, _ = train.stop_run(ctx, "tab-run")
    assert "Stop requested" in message
    wait_for(lambda: ctx.runs.refresh() or ctx.runs.info("tab-run").state == "stopped", 90, what="the run to stop")
    assert train.live_view(ctx, "tab-run")[4].loc[0, "state"] == "stopped"
    assert not pid_alive(info.pid)
    assert json.loads((run_dir / "status.json").read_text())["state"] == "stopped"  # the trainer's own graceful stop
    done_before = len(list(run_dir.glob("*/*/fold*/metrics.json")))
    assert done_before < 2
    assert "stopped" in train.live_view(ctx, "tab-run")[0]

    message, _ = train.resume_run(ctx, "tab-run")
    assert "resumed" in message
    wait_for(
        lambda: ctx.runs.refresh() or ctx.runs.info("tab-run").state == "finished",
        240,
        what="the resumed run to finish",
    )
    assert len(list(run_dir.glob("*/*/fold*/metrics.json"))) == 2
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "run_start" for e in events) == 2
    assert any(e["event"] == "resume" for e in events) or done_before == 1  # the stopped fold continued from last/
    assert json.loads((run_dir / "results.json").read_text())["rows"][0]["n_folds"] == 2
    # Who did each run action is in the store's audit log (open mode: the one local user).
    runs_log = [
        (e["actor"], e["action"], e["after"]["run"]) for e in ctx.store.audit_log() if e["table_name"] == "runs"
    ]
    assert runs_log[::-1] == [("local", a, "tab-run") for a in ("launch", "stop", "resume")]


def test_invalid_launch_is_refused_before_any_process(ctx, tiny_data):
    base, values = _form(
        ctx, tiny_config(ctx.settings, "refused", tiny_data), **{"model.mode": "lora", "data.root": "/etc"}
    )
    message, _ = train.launch(ctx, base, *values)
    assert (
        message.startswith("Not launched")
        and "outside the allowed data roots" in message
        and "CNNs train in mode" in message
    )
    assert not (ctx.settings.runs_dir / "refused").exists()
    assert "outside the allowed data roots" in train.check_form(ctx, base, *values)


def test_annotated_set_without_a_store_says_so(ctx, tiny_data, monkeypatch):
    base, values = _form(ctx, tiny_config(ctx.settings, "ann", tiny_data), **{"data.source": "annotated set"})

    def no_store(self):
        raise ModuleNotFoundError("No module named 'histoapp.store'")

    monkeypatch.setattr(type(ctx), "store", property(no_store))
    message, _ = train.launch(ctx, base, *values)
    assert "annotation store" in message and not (ctx.settings.runs_dir / "ann").exists()


def test_missing_preset_keeps_the_form(ctx, monkeypatch):
    from histoapp.runs import form

    monkeypatch.setitem(form.PRESETS, "paper LoRA", "not_there.yaml")
    out = train.preset_values(ctx, "paper LoRA")
    assert "not_there.yaml" in out[1]
    out = train.preset_values(ctx, "small demo (CPU: 5 min alone, up to 1 h busy)")
    assert out[0]["data"]["source"] == "idc" and "loaded" in out[1]


def test_annotated_set_is_exported_from_the_real_store_and_used(ctx, tiny_data):
    from trainer.config import ExperimentConfig

    store = ctx.store  # histoapp.store on a SQLite file in this test's data folder
    images = sorted(tiny_data.rglob("*-40-*.png"))[:24]
    for path in images:
        image_id = store.add_image(path, dataset="breakhis", magnification="40X")
        store.annotate(image_id, "pathologist", label="malignant" if "_M_" in path.name else "benign")
    base, values = _form(ctx, tiny_config(ctx.settings, "ann-ok", tiny_data), **{"data.source": "annotated set"})
    assert "exported from the annotation store" in train.check_form(ctx, base, *values)
    message, _ = train.launch(ctx, base, *values)
    assert "🚀" in message, message
    ctx.runs.stop("ann-ok", force=True)
    cfg = ExperimentConfig.from_yaml(ctx.settings.runs_dir / "ann-ok" / "config.yaml")
    export = ctx.settings.data_dir / "annotated_export" / "ann-ok"
    assert cfg.data.root == str(export) and cfg.data.source == "csv"  # the store's manifest.csv keeps patient ids
    from trainer.data.sources import index_dataset

    assert len(index_dataset(export, cfg.data.source).records) == len(images)
    # A second run gets its own snapshot (the store refuses to export into a non-empty folder).
    base, values = _form(ctx, tiny_config(ctx.settings, "ann-two", tiny_data), **{"data.source": "annotated set"})
    assert "🚀" in train.launch(ctx, base, *values)[0]
    ctx.runs.stop("ann-two", force=True)

from histoapp.runs.live import curves, format_duration, progress

CONFIG = {
    "data": {"folds": 2, "magnifications": ["40X"]},
    "models": [{"name": "m"}],
    "train": {"epochs": 2, "batch_size": 4, "grad_accum": 1, "max_steps": None},
}


def _ev(event, t, fold=0, **kw):
    return {"event": event, "time": t, "model": "m", "magnification": "40X", "fold": fold, **kw}


def test_progress_and_eta_follow_the_events():
    events = [{"event": "run_start", "time": 100.0}, _ev("fold_start", 101, n_train=20)]  # 5 steps/epoch, 10 per fold
    events += [
        _ev("step", 101 + s, epoch=0 if s <= 5 else 1, step=s, loss=1.0 / s, lr=1e-3, images_per_s=8.0, mem_mb=100.0)
        for s in range(1, 6)
    ]
    p = progress(CONFIG, events, now=110.0)
    assert p["folds_total"] == 2 and p["folds_done"] == 0 and p["steps_total"] == 10 and p["step"] == 5
    assert p["fraction"] == 0.25
    assert abs(p["eta_s"] - 10.0 * 0.75 / 0.25) < 1e-9  # 10 s for a quarter: 30 s to go
    assert p["images_per_s"] == 8.0 and p["mem_mb"] == 100.0
    events += [_ev("fold_end", 120, metrics={}), _ev("run_end", 121, state="stopped")]
    events += [
        {"event": "run_start", "time": 200.0},
        _ev("fold_start", 201, fold=1, n_train=20),
        _ev("step", 205, fold=1, epoch=0, step=5),
    ]
    p = progress(CONFIG, events, now=210.0)
    assert p["folds_done"] == 1 and p["fraction"] == 0.75
    assert abs(p["eta_s"] - 10.0 * 0.25 / 0.25) < 1e-9  # pace of this launch only (the earlier fold is not counted)


def test_curves_split_series_per_fold(tmp_path):
    events = [
        _ev("step", 1, step=1, loss=0.9),
        _ev("step", 2, step=2, loss=0.8),
        _ev("step", 3, fold=1, step=1, loss=0.7),
        _ev("epoch", 4, epoch=0, train_loss=0.8, val_loss=0.7, val_accuracy=0.5, val_auc=0.6, best=True),
    ]
    c = curves(tmp_path, events)
    assert list(c["steps"]["series"].unique()) == ["m 40X fold 0", "m 40X fold 1"]
    assert c["steps"]["loss"].tolist() == [0.9, 0.8, 0.7] and len(c["epochs"]) == 1
    assert format_duration(3725) == "1h02m" and format_duration(65) == "1m05s" and format_duration(None) == "—"

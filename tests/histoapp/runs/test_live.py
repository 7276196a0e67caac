import pytest

from histoapp.runs.live import curves, format_duration, format_eta, progress

CONFIG = {
    "data": {"folds": 2, "magnifications": ["40X"]},
    "models": [{"name": "m"}],
    "train": {"epochs": 2, "batch_size": 4, "grad_accum": 1, "max_steps": None},
}


def _ev(event, t, fold=0, **kw):
    return {"event": event, "time": t, "model": "m", "magnification": "40X", "fold": fold, **kw}


def test_progress_follows_the_events():
    events = [{"event": "run_start", "time": 100.0}, _ev("fold_start", 101, n_train=20)]  # 5 steps/epoch, 10 per fold
    events += [
        _ev("step", 101 + s, epoch=0 if s <= 5 else 1, step=s, loss=1.0 / s, lr=1e-3, images_per_s=8.0, mem_mb=100.0)
        for s in range(1, 6)
    ]
    p = progress(CONFIG, events, now=106.0)
    assert p["folds_total"] == 2 and p["folds_done"] == 0 and p["steps_total"] == 10 and p["step"] == 5
    assert p["fraction"] == 0.25
    assert p["images_per_s"] == 8.0 and p["mem_mb"] == 100.0
    # 1 s per step, 15 steps left; no fold has finished yet, so its end is not measured: up to a quarter more.
    assert p["eta_s"] == pytest.approx((15.0, 18.75))
    assert format_eta(p["eta_s"]) == "15s – 19s"


def test_eta_runs_down_while_the_step_counter_waits_and_never_grows():
    events = [{"event": "run_start", "time": 0.0}, _ev("fold_start", 0, n_train=40)]  # 10 steps/epoch, 20 per fold
    events += [_ev("step", 2.0 * s, epoch=0, step=s) for s in range(1, 6)]  # 2 s per step
    etas = [progress(CONFIG, events, now=t)["eta_s"] for t in (10.0, 20.0, 100.0)]
    assert etas[0] == pytest.approx((70.0, 87.5))  # 35 steps x 2 s, the top a quarter more
    assert etas[1][0] < etas[0][0] and etas[1][1] < etas[0][1]  # 10 s later, no new step: 10 s less
    assert etas[2][0] == 0.0  # overdue: never negative
    assert progress(CONFIG, events[:4], now=6.0)["eta_s"] is None  # two intervals: still measuring
    assert format_eta(None).startswith("—")


def test_eta_counts_a_finished_folds_overhead_and_ignores_an_earlier_launch():
    events = [{"event": "run_start", "time": 0.0}, _ev("fold_start", 0, n_train=40)]
    events += [_ev("step", 10.0 + s, epoch=0, step=s) for s in range(1, 21)]  # 1 s per step, fold 0's 20 steps
    events += [_ev("fold_end", 40.0, metrics={}), _ev("run_end", 41.0, state="stopped")]
    # A later launch on a busier machine: 3 s per step. The first launch's pace does not count.
    events += [{"event": "run_start", "time": 1000.0}, _ev("fold_start", 1000.0, fold=1, n_train=40)]
    events += [_ev("step", 1000.0 + 3 * s, fold=1, epoch=0, step=s) for s in range(1, 11)]
    low, high = progress(CONFIG, events, now=1030.0)["eta_s"]
    assert low == pytest.approx(30.0) and high == pytest.approx(37.5)  # 10 steps x 3 s (+ a quarter: unmeasured)
    # The same launch with its first fold finished: 20 s of that fold fell outside its step intervals.
    one = [{"event": "run_start", "time": 0.0}, *events[1:22], events[22]]
    one += [_ev("fold_start", 40.0, fold=1, n_train=40)]
    one += [_ev("step", 60.0 + s, fold=1, epoch=0, step=s) for s in range(1, 11)]
    low, high = progress(CONFIG, one, now=70.0)["eta_s"]
    assert low == pytest.approx(10 * 1.0 + 20.0 + 1.0) and high == pytest.approx(low)  # steps + measured overhead
    assert format_eta((low, high)) == "about 31s"


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

"""The model worker (``histoapp.models.worker``, ``histoapp.models.worker_client``) with fake operations: it
starts and stops with the app, leaves no process behind, says when it died and restarts, and a call sent during
its warm-up waits for it and succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from histoapp.models.worker_client import ModelWorker, WorkerError
from trainer.threads import BLAS_THREAD_VARIABLES

FAKE = "tests.histoapp.models.fake_ops"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[-1][0] != "Z"


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def worker():
    workers = []

    def make(**settings) -> ModelWorker:
        w = ModelWorker(settings, ops=FAKE, max_restarts=settings.pop("max_restarts", 3))
        workers.append(w)
        return w.start()

    yield make
    for w in workers:
        w.close()


def test_starts_answers_in_its_own_process_and_stops_with_close(worker):
    w = worker()
    assert w.wait(30) and w.state == "ready" and "Models ready (fake-cnn, fake-vlm" in w.status()
    pid = w.call("pid")
    assert pid == w.pid != os.getpid()
    assert w.call("predict", 7)["x"] == 7
    w.close()
    assert _gone(pid), "the worker outlived close()"
    with pytest.raises(WorkerError, match="shut down"):
        w.call("pid")


def test_a_call_during_the_warm_up_waits_for_it_and_succeeds(worker):
    w = worker(warm_s=1.0)
    assert w.state == "loading" and "loading models" in w.status() and not w.over
    t0 = time.perf_counter()
    assert w.call("predict", 1)["x"] == 1
    assert time.perf_counter() - t0 > 0.5, "the call did not wait for the warm-up"
    assert w.wait(30) and w.state == "ready"


def test_a_failed_warm_up_says_so_and_calls_still_run(worker):
    w = worker(warm_error="no such model")
    assert w.wait(30) and w.state == "failed"
    assert "no such model" in w.status() and "load on the first prediction" in w.status()
    assert w.call("sleep", 0.0) == 0.0


def test_an_error_in_a_call_is_raised_in_the_app_and_the_worker_serves_on(worker):
    w = worker()
    with pytest.raises(ValueError, match="bad patch"):
        w.call("fail", "bad patch")
    assert w.call("predict", 2)["x"] == 2


def test_a_crash_fails_the_calls_under_way_with_a_clear_error_and_the_worker_restarts(worker):
    w = worker()
    first = w.call("pid")
    with pytest.raises(WorkerError, match=r"model worker stopped \(exit code 3\).*restarted"):
        w.call("crash", 3)
    assert _gone(first)
    assert w.wait(30) and w.state == "ready"  # the new worker warmed up again
    second = w.call("pid")
    assert second != first and _alive(second)


def test_a_worker_that_keeps_dying_is_not_restarted_and_says_so(worker):
    w = worker(max_restarts=1, warm_crash=5)  # dies in every warm-up: started, restarted once, then left dead
    assert w.wait(30) and w.state == "dead" and w.over and w.exit_codes == [5, 5]
    assert "exit code 5" in w.status() and "2 times in a row" in w.status() and "not restarted" in w.status()
    t0 = time.perf_counter()
    with pytest.raises(WorkerError, match="not restarted"):
        w.call("pid")  # at once: nothing hangs
    assert time.perf_counter() - t0 < 1.0


def test_numpys_blas_in_the_worker_runs_torchs_threads_unless_the_environment_sets_them(monkeypatch):
    # OpenBLAS's default (one thread per core) spins against torch's pass and the web server on a small CPU.
    from tests.histoapp.models.fake_ops import ThreadSettings

    for name in BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    w = ModelWorker(ThreadSettings(), ops=FAKE).start()
    try:
        got = w.call("blas_threads")
    finally:
        w.close()
    assert {name: got[name] for name in BLAS_THREAD_VARIABLES} == dict.fromkeys(BLAS_THREAD_VARIABLES, "1")
    assert got.get("blas", [1]) == [1]
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # the operator's choice wins
    w = ModelWorker(ThreadSettings(), ops=FAKE).start()
    try:
        got = w.call("blas_threads")
    finally:
        w.close()
    assert got["OPENBLAS_NUM_THREADS"] == "2" and got["OMP_NUM_THREADS"] == "1"
    assert got.get("blas", [2]) == [2]


APP = textwrap.dedent(
    f"""
    import sys, time
    from histoapp.models.worker_client import ModelWorker
    w = ModelWorker({{}}, ops={FAKE!r}).start()
    w.wait(30)
    print(w.call("pid"), flush=True)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_its_app_however_the_app_ends(sig, tmp_path):
    """The app's process killed (no atexit, no close()): the worker sees its socket close and exits."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env = {**os.environ, "PYTHONPATH": root}
    app = subprocess.Popen([sys.executable, "-c", APP], stdout=subprocess.PIPE, text=True, env=env, cwd=root)
    try:
        pid = int(app.stdout.readline())
        assert _alive(pid)
        app.send_signal(sig)
        app.wait(30)
        assert _gone(pid), "the worker outlived its app"
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


REAL = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from histoapp.models.worker_client import ModelWorker
    from histoapp.settings import Settings
    from histoapp.ui import api
    from histoapp.ui.app import build

    tmp = Path(sys.argv[1])
    settings = Settings(runs_dir=tmp / "runs", data_dir=tmp / "data", hub_models=[])
    worker = ModelWorker(settings).start()
    demo, ctx = build(settings, warm=True, worker=worker)
    (result,) = api.predict_batch(ctx, [sys.argv[2]], explain=True)  # may arrive during the warm-up: waits
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[3].split(","))
    worker.wait(300)  # a prediction may answer before the warm-up's own first passes are over
    print(json.dumps({"result": result, "heavy": heavy, "state": worker.state, "pid": worker.pid}))
    worker.close()
    """
)


@pytest.mark.slow
def test_real_models_in_the_worker_answer_as_in_process_and_the_app_never_imports_torch(tmp_path):
    """The demo models through the worker (a fresh interpreter: the app's side) give the same probabilities and
    maps as in this process, and the app's process has imported none of the heavy modules, predictions made."""

    from histoapp.settings import Settings
    from histoapp.ui import api
    from histoapp.ui.app import build
    from histoapp.ui.examples import list_examples
    from tests.ui.test_app_shell import HEAVY, run_fresh

    patch = str(list_examples()[0]["path"])
    got = run_fresh(REAL, str(tmp_path), patch, ",".join(HEAVY), timeout=600)
    assert got["heavy"] == [] and got["state"] == "ready"
    assert _gone(got["pid"])
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "here", hub_models=[])
    _, ctx = build(settings)  # models in this process
    (here,) = api.predict_batch(ctx, [patch], explain=True)
    for side in ("cnn", "vlm"):
        a, b = got["result"][side], here[side]
        assert a["label"] == b["label"] and abs(a["prob_malignant"] - b["prob_malignant"]) < 1e-5
        assert a["abstain"] == b["abstain"] and a["explanation"] == b["explanation"]
        assert (
            max(
                abs(x - y)
                for ra, rb in zip(a["heatmap"], b["heatmap"], strict=True)
                for x, y in zip(ra, rb, strict=True)
            )
            < 1e-3
        )

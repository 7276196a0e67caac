"""The served app under abuse (issue 28), loopback only, bounded in calls and time: what /config shows a public
visitor, the rate limit and the global queue against forged sessions, sessions kept in memory, downloads that
expire while the server runs, and the login: throttled over HTTP and checked off the event loop."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image

from histoapp import auth, login, public
from histoapp.settings import Settings
from histoapp.ui import app as app_module
from histoapp.ui.examples import list_examples

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_limits():
    public._predictions.clear()
    login._guard.clear()
    yield
    public._predictions.clear()
    login._guard.clear()


@contextmanager
def served(settings: Settings):
    """The app as ``launch()`` serves it (its queue and launch options), in this process, on a free port."""
    demo, ctx = app_module.build(settings)
    demo.queue(**public.queue_options(settings))
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **app_module.launch_options(settings))
    try:
        yield demo, demo.local_url.rstrip("/")
    finally:
        demo.close()


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def test_config_shows_no_server_path_to_a_public_visitor(tmp_path):
    roots = [tmp_path / "secret-root-a", tmp_path / "secret-root-b"]
    settings = Settings(
        runs_dir=tmp_path / "secret-runs", data_dir=tmp_path / "secret-data", allowed_roots=roots, public=True
    )
    with served(settings) as (_, url):
        config = httpx.get(f"{url}/config", timeout=30).text
    assert "Predict" in config
    for path in (settings.runs_dir, settings.data_dir, *settings.allowed_roots):
        assert str(path) not in config
    assert str(tmp_path) not in config


def test_forged_sessions_share_one_rate_and_a_flood_meets_the_global_queue_cap(tmp_path, monkeypatch):
    """Each ``Client`` is a new session hash (what a forger sends). First the per-address rate (3 a minute), then,
    with the rate out of the way, the queue: 2 calls run, 1 waits, the rest are refused at once."""
    from gradio_client import handle_file

    from histoapp.models import calls

    patch = tmp_path / "p.png"
    Image.new("RGB", (64, 64), (200, 120, 170)).save(patch)
    monkeypatch.setattr(calls, "batch_call", lambda ctx, group, fn, item: time.sleep(2.0) or [{"name": "p.png"}])
    settings = Settings(
        runs_dir=tmp_path / "runs",
        data_dir=tmp_path / "data",
        public=True,
        public_predictions_per_min=3,
        public_queue=1,
        predict_batch=1,  # two model events at once
        hub_models=[],
    )
    with served(settings) as (_, url):
        outcomes = []
        for _ in range(5):
            try:
                _client(url).predict(handle_file(str(patch)), api_name="/predict")
                outcomes.append("ok")
            except Exception as exc:
                outcomes.append(str(exc))
        assert outcomes[:3] == ["ok"] * 3
        assert all("3 predictions a minute" in o for o in outcomes[3:])

        public._predictions.clear()
        settings.public_predictions_per_min = 100
        clients = [_client(url) for _ in range(6)]
        jobs = [c.submit(handle_file(str(patch)), api_name="/predict") for c in clients]

        def outcome(job):
            try:
                job.result(timeout=60)
                return "ok"
            except Exception as exc:
                return str(exc)

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(outcome, jobs))
    assert results.count("ok") >= 2, results
    assert sum("queue is full" in r.lower() for r in results) >= 2, results


def test_the_server_keeps_a_bounded_number_of_sessions_and_predict_results_expire(tmp_path):
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", max_sessions=3, session_ttl_s=90)
    with served(settings) as (demo, url):
        for _ in range(6):
            _client(url).predict(api_name="/models")
        assert 1 <= len(demo.state_holder.session_data) <= 3
        states = [b for b in demo.blocks.values() if b.__class__.__name__ == "State"]
        predict_state = [s for s in states if s.value.__class__.__name__ == "Session"]
        assert [s.time_to_live for s in predict_state] == [90]


def test_a_public_download_is_deleted_after_its_ttl_while_the_server_runs(tmp_path):
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", public=True, public_upload_ttl_s=2)
    exports = settings.runs_dir / ".exports"
    with served(settings) as (demo, url):
        assert demo.delete_cache == (1, 2)  # Gradio's copies of uploads and downloads too
        _client(url).predict(["results/idc/cnn/"], api_name="/export_results")
        assert [p.suffix for p in exports.iterdir()] == [".csv"]
        deadline = time.monotonic() + 20
        while any(exports.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(exports.iterdir())


def _users(tmp_path) -> Settings:
    path = tmp_path / "users.json"
    auth.add_user(path, "alice", "right-password", "annotator")
    return Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", users_file=path)


def test_login_is_throttled_over_http_with_a_reason(tmp_path):
    settings = _users(tmp_path)
    with served(settings) as (_, url):
        for i in range(login.FREE_FAILURES):
            r = httpx.post(f"{url}/login", data={"username": "alice", "password": f"guess-{i}"}, timeout=30)
            assert r.status_code == 400 and "Incorrect credentials" in r.text
        r = httpx.post(f"{url}/login", data={"username": "alice", "password": "right-password"}, timeout=30)
        assert r.status_code == 400 and "Too many failed logins" in r.json()["detail"]
        # The address waits too (the middleware told the check who is asking): another name from it is refused.
        r = httpx.post(f"{url}/login", data={"username": "carol", "password": "anything-at-all"}, timeout=30)
        assert "Too many failed logins" in r.json()["detail"]
        assert set(login._guard._failures) == {"user:alice", "ip:127.0.0.1"}
        assert login.FREE_FAILURES <= 5 and "15 minutes" in httpx.get(f"{url}/config", timeout=30).text


def test_other_requests_are_served_while_a_password_is_being_checked(tmp_path, monkeypatch):
    """The argon2 check used to run on the event loop: while it ran, nothing else was answered."""
    settings = _users(tmp_path)
    entered, release = threading.Event(), threading.Event()
    real = auth._hasher

    class Slow:
        def verify(self, hash_, password):
            entered.set()
            release.wait(20)
            return real.verify(hash_, password)

        def hash(self, password):
            return real.hash(password)

    with served(settings) as (_, url):
        monkeypatch.setattr(auth, "_hasher", Slow())
        answer = {}
        t = threading.Thread(
            target=lambda: answer.setdefault(
                "login",
                httpx.post(f"{url}/login", data={"username": "alice", "password": "right-password"}, timeout=60),
            )
        )
        t.start()
        try:
            assert entered.wait(20)
            r = httpx.get(f"{url}/gradio_api/app_id", timeout=5)  # stalled until release on a blocked loop
            assert r.status_code == 200
        finally:
            release.set()
            t.join(60)
        assert answer["login"].status_code == 200


# A second app server on this machine, in its own process as it would be: a public demo, whose sweep deletes the
# Gradio files it has seen once 2 s old, every second. It prints its address and serves until stdin closes.
PUBLIC_SERVER = """
import sys, tempfile
from pathlib import Path
from histoapp.settings import Settings
from histoapp.ui.app import build_app
tmp = Path(tempfile.mkdtemp())
demo = build_app(Settings(runs_dir=tmp / "runs", data_dir=tmp / "data", public=True, public_upload_ttl_s=2))
demo.queue().launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
print(demo.local_url, flush=True)
sys.stdin.read()
demo.close()
"""


def _upload(url: str, path: Path) -> Path:
    with path.open("rb") as f:
        reply = httpx.post(f"{url}gradio_api/upload", files={"files": (path.name, f)}, timeout=60)
    reply.raise_for_status()
    return Path(reply.json()[0])


@pytest.mark.slow
def test_another_servers_cache_sweep_does_not_delete_this_servers_upload(tmp_path):
    """Gradio keeps an upload at ``<cache>/<sha256>/<name>``: with one cache for the machine, a public demo's
    sweep deleted another server's upload of the same patch before it was read (a flaky CI run)."""
    patch = Path(list_examples()[0]["path"])
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}  # started on its own, not by this app
    other = subprocess.Popen(
        [sys.executable, "-c", PUBLIC_SERVER],
        env=env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        other_url = other.stdout.readline().strip()
        assert other_url.startswith("http"), "the second server did not start"
        _upload(other_url, patch)  # the public server now sweeps its copy of this patch
        with served(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")) as (_, url):
            mine = _upload(url + "/", patch)
            time.sleep(4)  # past the public server's 2 s TTL and a sweep
            assert mine.is_file(), f"{mine} was deleted by the other server's sweep"
    finally:
        other.stdin.close()
        other.wait(60)

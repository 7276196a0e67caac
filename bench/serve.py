"""What the benchmarks that serve the app share: a free loopback port, the app served in a subprocess (timed from
process start until its page is served, stopped at the end), and N simulated users calling it through
``gradio_client`` at once, bounded in count and time. Loopback only: the app listens on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_USERS = 64
BARRIER_S = 900.0  # the users' set-up must end by then


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    url: str
    proc: subprocess.Popen
    page_s: float  # process start -> the page (``/``) answered HTTP 200


@contextmanager
def served(
    args: list[str], env: dict, *, port: int, cwd: Path = ROOT, timeout_s: float = 600.0, log: Path | None = None
) -> Iterator[Served]:
    """Run ``python *args`` (the app, listening on ``port``) and yield once it serves its page; stop it after."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode} before serving its page (log: {log})")
            if time.perf_counter() - t0 > timeout_s:
                raise TimeoutError(f"the app did not serve its page within {timeout_s:.0f} s")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield Served(url, proc, time.perf_counter() - t0)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()


def app_env(data: Path, **extra: str) -> dict:
    """The environment of a served app: its own runs and data folders, open mode, offline, no telemetry."""
    env = {
        **os.environ,
        "HISTOAPP_DATA": str(data),
        "HISTOAPP_RUNS": str(data / "runs"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }
    env.pop("HISTOAPP_USERS", None)
    return env


def run_users(
    n: int,
    call: Callable[[int, int], None],
    *,
    seconds: float,
    requests: int | None = None,
    setup: Callable[[int], None] | None = None,
    think: Callable[[int, int], float] | None = None,
) -> dict:
    """``n`` users started together (``setup(k)`` first, untimed); user ``k`` calls ``call(k, i)`` for i = 0, 1, ...
    until ``requests`` calls (None: no limit) or ``seconds`` have passed, waiting ``think(k, i)`` seconds (untimed)
    before each. A call that raises is a failure (its message kept); the others' latencies are returned, with the
    wall time of the whole case."""
    if not 1 <= n <= MAX_USERS:
        raise ValueError(f"bounded: 1 to {MAX_USERS} users")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(n + 1)
    deadline = [float("inf")]

    def user(k: int) -> None:
        try:
            if setup:
                setup(k)
        except Exception as exc:  # this user makes no call; the others still start
            with lock:
                errors.append(f"set-up: {exc.__class__.__name__}: {exc}"[:200])
            start.wait(BARRIER_S)
            return
        start.wait(BARRIER_S)
        i = 0
        while (requests is None or i < requests) and time.perf_counter() < deadline[0]:
            if think:
                time.sleep(think(k, i))
            t0 = time.perf_counter()
            try:
                call(k, i)
            except Exception as exc:  # counted, not hidden
                with lock:
                    errors.append(f"{exc.__class__.__name__}: {exc}"[:200])
            else:
                with lock:
                    latencies.append(time.perf_counter() - t0)
            i += 1

    threads = [threading.Thread(target=user, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    start.wait(BARRIER_S)
    t_start = time.perf_counter()
    deadline[0] = t_start + seconds
    for t in threads:
        t.join()
    return {"latencies": latencies, "errors": errors, "elapsed_s": time.perf_counter() - t_start}


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")

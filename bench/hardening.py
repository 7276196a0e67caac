"""Issue 28's figures: what one public request can cost, what sessions cost the server, and how logins fare while
others guess passwords. Loopback only, bounded in calls and time; every figure has its baseline from the same run.

- ``request``: one Predict click (both models' probabilities, Grad-CAM, VLM attention and answer; the tab's
  handler in this process, the demo models, ``HISTOAPP_MODEL_WORKER=0``) on a real BreakHis image (baseline),
  then on hostile uploads: a one-colour PNG of 36 Mpx (tens of KB) in a lab app (no budget: as every app was
  before) and in public mode (refused from its header), a PNG at public mode's whole pixel budget (the worst
  accepted), a JPEG of 36 Mpx (decoded at reduced scale), and 200 patches. Wall and CPU seconds, peak RSS growth.
- ``sessions``: a public app served as ``app.py`` serves it, then ``--sessions`` new sessions (each a fresh session
  hash calling ``/models``, as each page load or forged client makes one); the server's RSS before and after,
  with Gradio's default capacity (10,000 sessions, as before) and with ``HISTOAPP_MAX_SESSIONS`` (default).
- ``login``: a users-mode app; another user's login and ``/app_id`` latencies (p50 / p95), idle and while 4
  clients post wrong passwords as fast as they can, for the login as it was (a synchronous argon2 check on
  Gradio's event loop, no throttle) and as it is (``histoapp.login``). The guessers send each try under another
  name and another address (``X-Forwarded-For`` through a trusted proxy, 127.0.0.1): the throttle never engages,
  so every try costs an argon2 check, the worst case; ``--one-address`` lets it engage.

    OMP_NUM_THREADS=1 nice -n 10 uv run python bench/hardening.py
    uv run python bench/hardening.py --parts login --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from serve import ROOT, app_env, free_port, percentile, served

sys.path.insert(0, str(ROOT))


# --- memory ------------------------------------------------------------------------------------------------
def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """The largest RSS of this process while the block runs (sampled every 5 ms), above its RSS at the start."""

    def __enter__(self):
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_mb())
        self.growth = self.peak - self.start


# --- one public request ------------------------------------------------------------------------------------
def part_request(args, tmp: Path) -> dict:
    from types import SimpleNamespace

    from PIL import Image

    from histoapp.models.ops import LocalModels
    from histoapp.models.registry import ModelRegistry
    from histoapp.settings import Settings
    from histoapp.ui.examples import list_examples
    from histoapp.ui.tabs import predict as tab

    def ctx_for(public: bool):
        s = Settings(runs_dir=tmp / "runs", data_dir=tmp / "data", public=public, model_worker=False, hub_models=[])
        reg = ModelRegistry(s, hub_models=[])
        return SimpleNamespace(settings=s, registry=reg, models=LocalModels(reg))

    lab, pub = ctx_for(False), ctx_for(True)
    budget = pub.settings.public_pixels
    examples = [e["path"] for e in list_examples()]
    breakhis = next(p for p in examples if "breakhis" in Path(p).name)
    idc = [p for p in examples if "idc" in Path(p).name]
    bomb = tmp / "bomb36.png"
    Image.new("RGB", (6000, 6000), (230, 180, 200)).save(bomb)
    jpeg = tmp / "big36.jpg"
    Image.new("RGB", (6000, 6000), (230, 180, 200)).save(jpeg, quality=90)
    side = int(budget**0.5)
    at_budget = tmp / "at_budget.png"
    Image.new("RGB", (side, budget // side), (230, 180, 200)).save(at_budget)
    many = [idc[i % len(idc)] for i in range(200)]
    cases = [
        ("baseline: one BreakHis image (700x460 JPEG), public", pub, [breakhis]),
        (f"36 Mpx PNG ({bomb.stat().st_size // 1024} KB), lab app: no budget (as before)", lab, [str(bomb)]),
        ("36 Mpx PNG, public: refused from its header", pub, [str(bomb)]),
        (f"36 Mpx JPEG ({jpeg.stat().st_size // 1024} KB), public: decoded at reduced scale", pub, [str(jpeg)]),
        (f"PNG at the whole budget ({side}x{budget // side}), public: the worst accepted", pub, [str(at_budget)]),
        ("200 IDC patches (50x50), public: the most files", pub, many),
    ]
    cnn, vlm = lab.registry.default_key("cnn"), lab.registry.default_key("vlm")
    for c in (lab, pub):  # load the models, untimed
        tab.analyze(c, [breakhis], "unknown", cnn, vlm, "Grad-CAM", tab.PREDICTED_CLASS, 0.5)
    rows = {name: [] for name, _, _ in cases}
    for _ in range(args.rounds):
        for name, c, files in cases:
            with PeakRss() as mem:
                t0, c0 = time.perf_counter(), time.process_time()
                out = tab.analyze(c, files, "unknown", cnn, vlm, "Grad-CAM", tab.PREDICTED_CLASS, 0.5)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            answered = sum(it.cnn is not None for it in out["session"].items)
            rows[name].append({"wall_s": wall, "cpu_s": cpu, "rss_growth_mb": mem.growth, "answered": answered})
    base = statistics.median(r["cpu_s"] for r in rows[cases[0][0]])
    table = []
    for name, runs in rows.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "rss_growth_mb")}
        table.append({"case": name, **med, "cpu_vs_baseline": med["cpu_s"] / base, "answered": runs[0]["answered"]})
        print(
            f"{name:<80} wall {med['wall_s']:6.2f} s  CPU {med['cpu_s']:6.2f} s ({med['cpu_s'] / base:5.1f}x)  "
            f"peak RSS +{med['rss_growth_mb']:6.0f} MB  answered {runs[0]['answered']}",
            flush=True,
        )
    return {"budget_pixels": budget, "rounds": args.rounds, "cases": table}


# --- sessions ----------------------------------------------------------------------------------------------
def _new_session(client, url: str, fn_index: int) -> None:
    """One event under a fresh session hash (what a page load, or a forged client, makes)."""
    h = uuid.uuid4().hex[:11]
    r = client.post(
        f"{url}gradio_api/queue/join",
        json={"data": [], "fn_index": fn_index, "session_hash": h, "event_data": None, "trigger_id": None},
    )
    r.raise_for_status()
    with client.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": h}) as stream:
        for line in stream.iter_lines():
            if "process_completed" in line:
                return
    raise RuntimeError("no answer")


def part_sessions(args, tmp: Path) -> dict:
    import httpx

    out = {}
    for label, cap in (("Gradio's default capacity (10,000): as before", "10000"), ("HISTOAPP_MAX_SESSIONS", None)):
        port = free_port()
        extra = {"HISTOAPP_PUBLIC": "1", "GRADIO_SERVER_PORT": str(port)}
        if cap:
            extra["HISTOAPP_MAX_SESSIONS"] = cap
        env = app_env(tmp / f"sess{port}", **extra)
        log = tmp / f"sessions-{port}.log"
        with served(["app.py"], env, port=port, log=log) as app, httpx.Client(timeout=60) as client:
            config = client.get(f"{app.url}config").json()
            fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "models")
            for _ in range(20):  # warm: first calls import what the endpoint needs
                _new_session(client, app.url, fn)
            time.sleep(2)
            before = rss_mb(app.proc.pid)
            t0 = time.perf_counter()
            for _ in range(args.sessions):
                _new_session(client, app.url, fn)
            elapsed = time.perf_counter() - t0
            time.sleep(2)
            after = rss_mb(app.proc.pid)
        settings_cap = int(cap) if cap else _default_cap()
        per = (after - before) / args.sessions
        out[label] = {
            "capacity": settings_cap,
            "rss_before_mb": before,
            "rss_after_mb": after,
            "mb_per_session": per,
            "seconds": elapsed,
        }
        print(
            f"{label:<50} capacity {settings_cap:>6}: RSS {before:6.0f} -> {after:6.0f} MB after {args.sessions} "
            f"sessions ({per * 1024:.0f} KB each; {elapsed:.0f} s)",
            flush=True,
        )
    return out


def _default_cap() -> int:
    from histoapp.settings import Settings

    return Settings().max_sessions


# --- logins under guessing ---------------------------------------------------------------------------------
LOGIN_SERVER = """
import sys
from histoapp import auth, public
from histoapp.settings import get_settings
from histoapp.ui import app as app_module

settings = get_settings()
demo, ctx = app_module.build(settings)
demo.queue(**public.queue_options(settings))
if sys.argv[1] == "before":  # the login as it was: a synchronous check on Gradio's event loop, no throttle
    check = lambda n, p: auth.check_password(auth.load_users(settings.users_file), n, p)  # noqa: E731
    demo.launch(server_name="127.0.0.1", auth=check, prevent_thread_lock=True)
else:
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, **app_module.launch_options(settings))
demo.block_thread()
"""


def _guesser(url: str, k: int, stop: threading.Event, one_address: bool, count: list[int]) -> None:
    """Post wrong passwords for made-up names until ``stop``; each from another address unless ``one_address``."""
    import httpx

    with httpx.Client(timeout=120) as c:
        while not stop.is_set():
            addr = "203.0.113.9" if one_address else f"198.51.{k}.{random.randrange(256)}"
            c.post(
                f"{url}login",
                data={"username": f"guess{random.randrange(10**6)}", "password": "wrong-guess"},
                headers={"X-Forwarded-For": addr},
            )
            count[0] += 1


def _login_case(url: str, guessers: int, seconds: float, one_address: bool) -> dict:
    """Another user's ``/app_id`` and login latencies while ``guessers`` clients guess."""
    import httpx

    stop, count = threading.Event(), [0]
    threads = [threading.Thread(target=_guesser, args=(url, k, stop, one_address, count)) for k in range(guessers)]
    for t in threads:
        t.start()
    time.sleep(1.0 if threads else 0)
    app_id, logins = [], []
    t_start = time.perf_counter()
    try:
        with httpx.Client(timeout=120) as c:
            while time.perf_counter() - t_start < seconds:
                t0 = time.perf_counter()
                c.get(f"{url}gradio_api/app_id").raise_for_status()
                app_id.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                r = c.post(
                    f"{url}login",
                    data={"username": "alice", "password": "alices-password"},
                    headers={"X-Forwarded-For": "192.0.2.10"},
                )
                logins.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"alice's login refused: {r.text}")
                time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return {
        "app_id_p50_ms": 1000 * percentile(app_id, 0.5),
        "app_id_p95_ms": 1000 * percentile(app_id, 0.95),
        "login_p50_ms": 1000 * percentile(logins, 0.5),
        "login_p95_ms": 1000 * percentile(logins, 0.95),
        "samples": len(logins),
        "guesses_per_s": count[0] / (time.perf_counter() - t_start + (1.0 if threads else 0)),
    }


def part_login(args, tmp: Path) -> dict:
    from histoapp import auth

    users = tmp / "users.json"
    auth.add_user(users, "alice", "alices-password", "annotator")
    out = {}
    for variant in ("before", "now"):
        port = free_port()
        env = app_env(tmp / f"login-{variant}", GRADIO_SERVER_PORT=str(port), HISTOAPP_TRUSTED_PROXIES="127.0.0.1")
        env["HISTOAPP_USERS"] = str(users)  # app_env drops it (open mode)
        with served(["-c", LOGIN_SERVER, variant], env, port=port, log=tmp / f"login-{variant}.log") as app:
            out[variant] = {}
            for load, guessers in (("idle", 0), ("4 guessers", 4)):
                row = out[variant][load] = _login_case(app.url, guessers, args.seconds, args.one_address)
                print(
                    f"login {variant:<6} {load:<10}: /app_id p50 {row['app_id_p50_ms']:7.1f} ms p95 "
                    f"{row['app_id_p95_ms']:7.1f} ms; another user's login p50 {row['login_p50_ms']:7.1f} ms p95 "
                    f"{row['login_p95_ms']:7.1f} ms ({row['samples']} samples; {row['guesses_per_s']:.1f} guesses/s)",
                    flush=True,
                )
    for variant, rows in out.items():
        idle, busy = rows["idle"], rows["4 guessers"]
        print(
            f"login {variant}: under guessing / idle, p95: /app_id {busy['app_id_p95_ms'] / idle['app_id_p95_ms']:.1f}x,"
            f" login {busy['login_p95_ms'] / idle['login_p95_ms']:.1f}x"
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="request,sessions,login")
    p.add_argument("--rounds", type=int, default=2, help="request: runs of each case (median)")
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=15.0, help="login: seconds per case")
    p.add_argument("--one-address", action="store_true", help="login: the guessers share one address")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if not 1 <= args.sessions <= 5000 or not 1 <= args.seconds <= 120:
        p.error("bounded: 1-5000 sessions, 1-120 s per login case")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}")
    result = {}
    with tempfile.TemporaryDirectory(prefix="histoapp-hardening-") as d:
        for part in args.parts.split(","):
            result[part] = {"request": part_request, "sessions": part_sessions, "login": part_login}[part](
                args, Path(d)
            )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

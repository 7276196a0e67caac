"""A classroom on two CPU cores (issue 16): the app served on 127.0.0.1 as ``app.py`` runs it, then 1, 10 and 30
simulated students call the documented ``/predict`` endpoint through ``gradio_client`` with CNN + Grad-CAM + VLM
+ attention (``explain=True``), all starting together, each sending ``--requests`` patches with up to ``--think``
seconds between them. Per case: p50 and p95 latency, throughput (answers/s over the case) and failures (errors,
and calls not answered within ``--seconds``).

Designs, in one run on the same machine (each its own served app; all serve at once and the cases alternate
between them, ``--rounds`` per user count, so a machine that gets busier slows them alike):

- ``serial``: the serving design before issue 16, on today's code: every request runs its own forward passes,
  two at a time, with torch's default threads (``HISTOAPP_PREDICT_BATCH=1``, ``HISTOAPP_TORCH_THREADS=0``);
- ``gradio-batch``: Gradio's batching, ``batch=True`` / ``max_batch_size`` on a bench-only endpoint calling the
  same batched model functions (not shipped: Gradio hands a batched function only the first request, so the
  per-request role check and public rate limit could not be applied; ``histoapp/models/batcher.py``);
- ``in-process``: the batcher with the models in the app's process (``HISTOAPP_MODEL_WORKER=0``): what shipped
  before the model worker;
- ``batcher``: what ships: per-request events, the app's batcher (``HISTOAPP_PREDICT_BATCH``, default 16), the
  models in the model worker process (``histoapp.models.worker``) with torch threads = cores - 1, and as many
  BLAS / OpenMP threads (numpy's products in the trust checks);
- ``blas-per-core``: ``batcher`` with the BLAS / OpenMP threads at their defaults, one per core (before issue 30).

First, cold starts (``--cold-starts``, one app at a time): process start -> page served, and page served -> the
first ``/predict`` answer (the model worker starts with the app; before it, the models loaded in the background
once the page was served), for this tree and, with
``--before REF``, for the app of that git commit (extracted with ``git archive``), alternating. Both first
predictions are plain ones (that older ``/predict`` has no ``explain``). ``--bytecode-cache`` runs every app with compiled bytecode, primed before
any timing (``PYTHONPYCACHEPREFIX`` in the run's temporary folder), as an installed Space has it; without it
every start compiles every module it imports, as this environment runs Python (``PYTHONDONTWRITEBYTECODE=1``
and uv's default of not compiling): an empty ``PYTHONPYCACHEPREFIX`` makes it so whatever the environment holds. Loopback only, at most 64 users, at most 600 s per case; it stops
by itself.

    nice -n 10 uv run python bench/classroom.py --before 497396a
    nice -n 10 uv run python bench/classroom.py --before 497396a --bytecode-cache --designs
    nice -n 10 uv run python bench/classroom.py --cold-starts 0 --designs batcher --users 30 --rounds 1
    nice -n 10 uv run python bench/classroom.py --cold-starts 0 --designs batcher blas-per-core --users 30 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from serve import MAX_USERS, ROOT, app_env, free_port, median, percentile, run_users, served

sys.path.insert(0, str(ROOT))
from trainer.threads import BLAS_THREAD_VARIABLES  # noqa: E402  (torch-free)

DESIGNS = {  # design -> the served app's environment
    "serial": {"HISTOAPP_PREDICT_BATCH": "1", "HISTOAPP_TORCH_THREADS": "0"},
    "gradio-batch": {},
    "in-process": {"HISTOAPP_MODEL_WORKER": "0"},
    "batcher": {},
    # The batcher before issue 30: numpy's BLAS / OpenMP in the model worker at their defaults (one per core).
    "blas-per-core": dict.fromkeys(BLAS_THREAD_VARIABLES, str(os.cpu_count() or 1)),
}
MAX_BATCH = 16
# What the apps import, before and after their page is served: compiled once when --bytecode-cache is given.
PRIME = "import histoapp.ui.app, torch, torchvision, transformers, pytorch_grad_cam, sklearn, scipy, sqlalchemy, plotly"
GRADIO_BATCH_SERVER = f"""
import sys
from histoapp.models.worker_client import start_worker
from histoapp.settings import get_settings

worker = start_worker(get_settings())  # as app.py: the models in the worker process
import gradio as gr
from histoapp.ui import api
from histoapp.ui.app import build

demo, ctx = build(get_settings(), warm=True, worker=worker)


def predict_gradio_batch(
    image: gr.FileData, cnn: str | None = None, vlm: str | None = None, magnification: str | None = None,
    explain: bool = False,
) -> dict:
    # batch=True: every argument is a list, one entry per queued request (only the first request is visible)
    return [api.predict_batch(ctx, [im["path"] for im in image], cnn[0], vlm[0], magnification[0], explain[0])]


with demo:
    gr.api(predict_gradio_batch, batch=True, max_batch_size={MAX_BATCH}, concurrency_limit=1)
demo.queue(default_concurrency_limit=2)
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), prevent_thread_lock=True, quiet=True)
ctx.warmup.start()
demo.block_thread()
"""


def examples() -> list[str]:
    from histoapp.ui.examples import list_examples

    found = [str(e["path"]) for e in list_examples()]
    if not found:
        raise SystemExit("no example patches in assets/examples")
    return found


def first_prediction(url: str, patch: str, explain: bool, timeout_s: float) -> float:
    """Seconds from now (the page was just served) to the first ``/predict`` answer, a client's set-up included."""
    from gradio_client import Client, handle_file

    t0 = time.perf_counter()
    client = Client(url, verbose=False)
    kwargs = {"explain": True} if explain else {}
    result = client.submit(handle_file(patch), api_name="/predict", **kwargs).result(timeout=timeout_s)
    if result.get("error") or not result.get("cnn"):
        raise RuntimeError(f"bad first answer: {str(result)[:200]}")
    return time.perf_counter() - t0


def load_case(app: dict, n: int, patches: list[str], args, seed: int) -> dict:
    """``n`` of the app's clients at once, ``args.requests`` explained predictions each."""
    from gradio_client import handle_file

    rng = random.Random(seed)  # the same think times for every design in a round
    thinks = {(k, i): rng.uniform(0, args.think) for k in range(n) for i in range(args.requests)}
    case_end = [0.0]  # set by the first call: every user starts at once

    def ask(k: int, i: int) -> None:
        t0 = time.perf_counter()
        case_end[0] = case_end[0] or t0 + args.seconds
        patch = handle_file(patches[(k + i) % len(patches)])
        job = app["clients"][k].submit(patch, explain=True, api_name=app["api_name"])
        try:
            result = job.result(timeout=max(1.0, case_end[0] - t0))
        except TimeoutError:
            job.cancel()
            raise TimeoutError(f"not answered within the case's {args.seconds:.0f} s") from None
        result = result[0] if isinstance(result, list) else result
        if result.get("error") or not (result.get("cnn") or {}).get("heatmap"):
            raise RuntimeError(f"bad answer: {str(result)[:120]}")

    case = run_users(n, ask, seconds=args.seconds, requests=args.requests, think=lambda k, i: thinks[(k, i)])
    return {**case, "requests": n * args.requests}


def summary(design: str, n: int, cases: list[dict]) -> dict:
    lat = [x for c in cases for x in c["latencies"]]
    errors = [e for c in cases for e in c["errors"]]
    requests = sum(c["requests"] for c in cases)
    return {
        "design": design,
        "users": n,
        "requests": requests,
        "answered": len(lat),
        "failures": requests - len(lat),  # errors, and calls the time limit left unanswered or unmade
        "p50_s": median(lat),
        "p95_s": percentile(lat, 0.95),
        "throughput_per_s": len(lat) / sum(c["elapsed_s"] for c in cases),
        "errors": sorted(set(errors))[:3],
    }


def bytecode(env: dict, args, work: Path, tree: Path = ROOT) -> dict:
    """``env`` with the run's bytecode cache (compiled for ``tree`` first) when --bytecode-cache is given."""
    if not args.bytecode_cache:  # every start compiles: no bytecode found (an installed one included), none kept
        return {**env, "PYTHONPYCACHEPREFIX": str(work / "no-pycache"), "PYTHONDONTWRITEBYTECODE": "1"}
    env = {**env, "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-c", PRIME], cwd=tree, env=env, check=True, capture_output=True)
    return env


def start_design(design: str, args, work: Path, patches: list[str], stack: ExitStack) -> dict:
    """Serve ``design``'s app (kept running until ``stack`` closes), time its start, connect its clients."""
    from gradio_client import Client

    port = free_port()
    data = work / design
    data.mkdir(parents=True)
    env = bytecode(app_env(data, GRADIO_SERVER_PORT=str(port), **DESIGNS[design]), args, work)
    cmd = ["-c", GRADIO_BATCH_SERVER, str(port)] if design == "gradio-batch" else [str(ROOT / "app.py")]
    app = stack.enter_context(served(cmd, env, port=port, log=work / f"{design}.log"))
    out = {
        "design": design,
        "page_s": app.page_s,
        "first_prediction_s": first_prediction(app.url, patches[0], True, args.seconds * 3),
        "api_name": "/predict_gradio_batch" if design == "gradio-batch" else "/predict",
    }
    print(json.dumps(out), flush=True)
    out["clients"] = [Client(app.url, verbose=False) for _ in range(max(args.users))]  # one by one, untimed
    return out


def cold_starts(args, work: Path, patches: list[str]) -> dict:
    """``--cold-starts`` starts of the app at ``--before`` and of this tree, alternating, one app at a time: process
    start -> page served, and page served -> the first (plain: the old ``/predict`` has no ``explain``)
    ``/predict`` answer, a new client's set-up included."""
    trees = {"after": ROOT}
    if args.before:
        trees["before"] = work / "before-tree"
        trees["before"].mkdir()
        archive = work / "before.tar"
        subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), args.before], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(trees["before"], filter="data")  # a tree of our own repository's commit
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for i in range(args.cold_starts):
        for name in sorted(trees, reverse=i % 2 == 1):  # after, before; then before, after; ...
            tree, port = trees[name], free_port()
            data = work / f"cold-{name}-{i}"
            data.mkdir()
            env = bytecode(app_env(data, GRADIO_SERVER_PORT=str(port), PYTHONPATH=str(tree)), args, work, tree)
            with served([str(tree / "app.py")], env, port=port, cwd=tree, log=work / f"{data.name}.log") as app:
                first = first_prediction(app.url, patches[0], False, args.seconds * 3)
            runs[name].append({"page_s": app.page_s, "first_prediction_s": first})
            print(json.dumps({"cold_start": name, **runs[name][-1]}), flush=True)
    return {
        name: {
            "ref": args.before if name == "before" else "this tree",
            "starts": len(rs),
            "page_s": median([r["page_s"] for r in rs]),
            "first_prediction_s": median([r["first_prediction_s"] for r in rs]),
            "runs": rs,
        }
        for name, rs in runs.items()
    }


def markdown(r: dict) -> str:
    rows = ["| app | starts | page served (s, median) | first prediction after the page (s, median) |"]
    rows.append("|---|---|---|---|")
    for name, c in r.get("cold_start", {}).items():
        rows.append(f"| {name} (`{c['ref']}`) | {c['starts']} | {c['page_s']:.1f} | {c['first_prediction_s']:.1f} |")
    rows += [
        "",
        "| design | users | requests | p50 s | p95 s | answers/s | failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in r["designs"]:
        for c in d["cases"]:
            rows.append(
                f"| {d['design']} | {c['users']} | {c['requests']} | {c['p50_s']:.2f} | {c['p95_s']:.2f} | "
                f"{c['throughput_per_s']:.2f} | {c['failures']} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, nargs="+", default=[1, 10, 30])
    p.add_argument("--requests", type=int, default=3, help="patches per user (default 3)")
    p.add_argument("--think", type=float, default=1.0, help="at most this many seconds before each request")
    p.add_argument("--seconds", type=float, default=120.0, help="time limit per case")
    p.add_argument("--rounds", type=int, default=2, help="cases per design and user count, alternating designs")
    p.add_argument("--designs", nargs="*", default=list(DESIGNS), choices=list(DESIGNS), help="none: cold starts only")
    p.add_argument("--cold-starts", type=int, default=3, help="starts of each app timed first (0: none)")
    p.add_argument("--before", metavar="REF", help="the cold starts also start the app of this git commit")
    p.add_argument("--bytecode-cache", action="store_true", help="apps start with compiled bytecode (primed first)")
    p.add_argument("--json", type=Path, help="write the figures here too")
    p.add_argument("--keep", type=Path, help="work in this (new) folder and keep it: the apps' logs")
    args = p.parse_args(argv)
    if (
        max(args.users) > MAX_USERS
        or args.seconds > 600
        or args.requests > 20
        or args.rounds > 5
        or args.cold_starts > 5
    ):
        p.error(f"bounded: at most {MAX_USERS} users, 20 requests each, 600 s per case, 5 rounds and 5 cold starts")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    sys.path.insert(0, str(ROOT))
    patches = examples()
    result: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
            "bytecode": "primed cache" if args.bytecode_cache else "compiled at every start",
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    with ExitStack() as keep:
        work = Path(keep.enter_context(tempfile.TemporaryDirectory(prefix="histoapp-classroom-")))
        if args.keep:
            args.keep.mkdir(parents=True)
            work = args.keep
        if args.cold_starts:
            result["cold_start"] = cold_starts(args, work, patches)
        with ExitStack() as stack:  # every design's app serves at once; the cases alternate between them
            apps = [start_design(d, args, work, patches, stack) for d in args.designs]
            cases: dict[tuple[str, int], list[dict]] = {}
            for n in args.users if apps else []:
                for r in range(args.rounds):
                    for app in apps[r % len(apps) :] + apps[: r % len(apps)]:
                        case = load_case(app, n, patches, args, seed=1000 * n + r)
                        cases.setdefault((app["design"], n), []).append(case)
                        print(json.dumps(summary(app["design"], n, [case]) | {"round": r}), flush=True)
        result["designs"] = [
            {
                "design": a["design"],
                "page_s": a["page_s"],
                "first_prediction_s": a["first_prediction_s"],
                "cases": [summary(a["design"], n, cases[(a["design"], n)]) for n in args.users],
            }
            for a in apps
        ]
    result["machine"]["load_average_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 1 if any(c["failures"] for d in result["designs"] for c in d["cases"] if d["design"] == "batcher") else 0


if __name__ == "__main__":
    sys.exit(main())

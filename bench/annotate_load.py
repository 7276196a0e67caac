"""Load test: N simulated annotators label through ``gradio_client`` against a running app, on SQLite and on
PostgreSQL, for a fixed time each. Reports labels/s, p50/p95 latency of ``/annotate_label``, and lost or
duplicated writes (checked against the database's audit log afterwards; both must be 0).

Loopback only (the app listens on 127.0.0.1), bounded in time (``--seconds`` per case) and in count
(``--annotators``, at most 64). PostgreSQL: the server named by ``HISTOAPP_TEST_PG``, else a throw-away one from
``.ci/postgres``. Not part of the test suite.

    nice -n 10 uv run python bench/annotate_load.py --annotators 8 32 --seconds 15
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from serve import ROOT, app_env, free_port, median, percentile, run_users, served

SERVER = """
import sys
from histoapp.ui.app import build_app
demo = build_app()
demo.queue(default_concurrency_limit=2)
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), quiet=True)
"""


def _postgres_url() -> tuple[str, callable]:
    """(URL of a fresh database, cleanup)."""
    from sqlalchemy import create_engine

    stop = None
    admin_url = os.environ.get("HISTOAPP_TEST_PG")
    if not admin_url:
        out = subprocess.run([str(ROOT / ".ci" / "postgres"), "start"], check=True, capture_output=True, text=True)
        env = dict(part.split("=", 1) for part in out.stdout.removeprefix("export ").split())
        admin_url, pg_dir = env["HISTOAPP_TEST_PG"].strip("'"), env["HISTOAPP_TEST_PG_DIR"].strip("'")
        stop = lambda: subprocess.run([str(ROOT / ".ci" / "postgres"), "stop", pg_dir], check=False)  # noqa: E731
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"load_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")

    def cleanup():
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()
        if stop:
            stop()

    return admin.url.set(database=name).render_as_string(hide_password=False), cleanup


def run_case(backend: str, n: int, seconds: float, work: Path) -> dict:
    from gradio_client import Client

    from histoapp.store import open_store
    from trainer.data.synthetic import generate

    data = work / f"{backend}-{n}"
    cleanup = lambda: None  # noqa: E731
    url = f"sqlite:///{data / 'annotations.db'}"
    if backend == "postgresql":
        url, cleanup = _postgres_url()
    patches = generate(data / "patches", patients_per_subtype=2, images_per_magnification=5, size=32, seed=n)
    store = open_store(url)
    store.import_folder(patches)
    ids = store.queue(mode="all", limit=None)

    port = free_port()
    clients: dict[int, Client] = {}
    acked = [[] for _ in range(n)]  # (image_id, label) per annotator, in order
    with served(["-c", SERVER, str(port)], app_env(data, HISTOAPP_DB=url), port=port) as app:

        def connect(k: int) -> None:
            clients[k] = Client(app.url, verbose=False)

        def label(k: int, i: int) -> None:
            image_id = ids[(k * 7 + i) % len(ids)]
            value = ("benign", "malignant")[(i // len(ids) + k) % 2]  # each pass flips: every call changes
            clients[k].predict(image_id=image_id, label=value, annotator=f"load{k}", api_name="/annotate_label")
            acked[k].append((image_id, value))

        case = run_users(n, label, seconds=seconds, setup=connect)
    latencies, errors, elapsed = case["latencies"], case["errors"], case["elapsed_s"]
    if errors:
        print(f"{backend}, {n} annotators: {len(errors)} errors, e.g. {sorted(set(errors))[:3]}", file=sys.stderr)

    # Every acknowledged label must be in the database once: one audit entry per call, final rows as last sent.
    total = sum(len(a) for a in acked)
    log = [e for e in store.audit_log() if e["table_name"] == "annotations"]
    rows = {(r["annotator"], r["image_id"]): r["label"] for r in store.annotations()}
    want = {}
    for k, calls in enumerate(acked):
        for image_id, label in calls:
            want[(f"load{k}", image_id)] = 1 if label == "malignant" else 0
    lost = max(0, total - len(log)) + sum(rows.get(key) != v for key, v in want.items())
    duplicated = max(0, len(log) - total) + len(set(rows) - set(want))
    store.close()
    cleanup()
    return {
        "backend": backend,
        "annotators": n,
        "labels": total,
        "labels/s": total / elapsed,
        "p50 ms": 1000 * median(latencies),
        "p95 ms": 1000 * percentile(latencies, 0.95),
        "errors": len(errors),
        "lost": lost,
        "duplicated": duplicated,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--annotators", type=int, nargs="+", default=[8, 32])
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = p.parse_args()
    if max(args.annotators) > 64 or args.seconds > 120:
        p.error("bounded: at most 64 annotators and 120 s per case")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    results = []
    with tempfile.TemporaryDirectory(prefix="histoapp-load-") as tmp:
        for backend in args.backends:
            for n in args.annotators:
                results.append(run_case(backend, n, args.seconds, Path(tmp)))
                print(results[-1], flush=True)
    cols = list(results[0])
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in results:
        print("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return 1 if any(r["lost"] or r["duplicated"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

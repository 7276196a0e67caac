"""Nothing entered is ever lost: many threads and processes writing at once, and a writer killed mid-write."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import threading
import time

from histoapp.store import open_store
from tests.histoapp.store import workers


def test_threads_writing_at_once_lose_nothing(store, image_ids):
    n_threads, per_thread = 8, 12
    errors = []
    barrier = threading.Barrier(n_threads)

    def work(t):
        try:
            barrier.wait()
            for k in range(per_thread):
                store.annotate(
                    image_ids[k], f"thread{t}", label=(t + k) % 2, note=f"t{t}k{k}", submission_id=f"t{t}-{k}"
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    rows = store.annotations()
    assert len(rows) == n_threads * per_thread
    got = {(r["annotator"], r["image_id"]): (r["label"], r["note"]) for r in rows}
    want = {
        (f"thread{t}", image_ids[k]): ((t + k) % 2, f"t{t}k{k}") for t in range(n_threads) for k in range(per_thread)
    }
    assert got == want
    assert len([e for e in store.audit_log() if e["table_name"] == "annotations"]) == n_threads * per_thread


def test_processes_opening_a_new_database_and_writing_at_once_lose_nothing(db_url, patches):
    url = db_url  # a new, empty database (SQLite: not even the file): the processes race to create the schema
    paths = sorted(str(p) for p in patches.rglob("*.png"))[:10]
    ctx = mp.get_context("spawn")  # a clean process each, like separate app servers
    start = ctx.Event()
    procs = [ctx.Process(target=workers.annotate_many, args=(url, f"proc{i}", paths, start)) for i in range(3)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    store = open_store(url)
    assert len(store.queue(mode="all", limit=None)) == len(paths)  # same bytes from 3 processes: one image each
    rows = store.annotations()
    assert len(rows) == 3 * len(paths)
    for i in range(3):
        mine = sorted((r for r in rows if r["annotator"] == f"proc{i}"), key=lambda r: int(r["note"].split(":")[1]))
        assert [r["note"] for r in mine] == [f"proc{i}:{k}" for k in range(len(paths))]
        assert [r["label"] for r in mine] == [k % 2 for k in range(len(paths))]
    store.close()


def test_process_killed_mid_write_leaves_database_consistent(tmp_path, patches, db_url):
    store = open_store(db_url)
    store.import_folder(patches)
    ctx = mp.get_context("spawn")
    for attempt in range(2):
        ready = ctx.Event()
        proc = ctx.Process(target=workers.write_forever, args=(db_url, f"victim{attempt}", ready))
        proc.start()
        assert ready.wait(60), "writer did not start"
        time.sleep(0.3 + 0.2 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    # No partial writes: every submission has its audit entry, every annotation row is exactly the "after"
    # of its newest audit entry, and every write the killed processes made is counted once.
    annotations = {a["id"]: a for a in store.annotations()}
    log = list(reversed(store.audit_log()))
    latest = {}
    for e in log:
        if e["table_name"] == "annotations":
            latest[e["row_id"]] = e["after"]
    assert latest and latest == annotations
    with store.engine.connect() as conn:
        subs = conn.exec_driver_sql("SELECT key, audit_id FROM submissions").fetchall()
    audit_ids = {e["id"] for e in log if e["table_name"] == "annotations"}
    assert len(subs) == len(audit_ids) and {a for _, a in subs} == audit_ids
    # and the database still takes writes
    store.annotate(1, "after-crash", label=1)
    store.close()

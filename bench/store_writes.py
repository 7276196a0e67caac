"""Annotation-store write costs, as ratios against baselines measured in the same run.

    uv run python bench/store_writes.py [--n 200]

1. ``Store.annotate`` (ORM + audit entry + submission id, one ``BEGIN IMMEDIATE`` transaction each) against a
   bare sqlite3 ``INSERT`` + commit with the same pragmas (WAL, synchronous=FULL): the floor set by the disk.
2. Importing images in batches (``add_images``, what ``import_folder`` does) against one ``add_image`` call
   (one transaction) per file."""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from histoapp.store import open_store
from trainer.data.synthetic import generate


def _timed(fn, n):
    out = []
    for k in range(n):
        t = time.perf_counter()
        fn(k)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200)
    n = ap.parse_args().n
    tmp = Path(tempfile.mkdtemp())
    root = generate(tmp / "p", patients_per_subtype=2, images_per_magnification=4, size=32, seed=0)  # 256 images
    files = sorted(root.rglob("*.png"))

    raw = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    for pragma in ("busy_timeout=30000", "journal_mode=WAL", "synchronous=FULL"):
        raw.execute(f"PRAGMA {pragma}")
    raw.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, image_id INT, annotator TEXT, label INT, note TEXT)")

    def raw_write(k):
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO t (image_id, annotator, label, note) VALUES (?, 'bench', ?, ?)", (k, k % 2, f"n{k}"))
        raw.execute("COMMIT")

    store = open_store(f"sqlite:///{tmp / 'one.db'}")
    t = time.perf_counter()
    ids = [store.add_image(f, dataset="breakhis", verify=False) for f in files]
    one_by_one = time.perf_counter() - t
    batched_store = open_store(f"sqlite:///{tmp / 'batch.db'}")
    t = time.perf_counter()
    batched_store.add_images([dict(path=f, dataset="breakhis") for f in files], verify=False)
    batched = time.perf_counter() - t

    base = _timed(raw_write, n)
    ann = _timed(
        lambda k: store.annotate(
            ids[k % len(ids)], f"bench{k // len(ids)}", label=k % 2, note=f"n{k}", submission_id=f"b{k}"
        ),
        n,
    )
    med_base, med_ann = statistics.median(base), statistics.median(ann)
    p95 = sorted(ann)[int(0.95 * len(ann)) - 1]
    print(
        f"annotate(): median {med_ann * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms; bare sqlite3 insert+commit median "
        f"{med_base * 1e3:.2f} ms; ratio annotate/bare = {med_ann / med_base:.1f}x"
    )
    print(
        f"import {len(files)} images: one transaction each {one_by_one:.2f} s, batched {batched:.2f} s; "
        f"speed-up {one_by_one / batched:.1f}x"
    )


if __name__ == "__main__":
    main()

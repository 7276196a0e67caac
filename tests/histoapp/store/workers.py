"""Functions run in child processes by the concurrency tests (module level, so ``spawn`` can import them)."""

from __future__ import annotations

import os


def annotate_many(url: str, annotator: str, paths: list[str], start_event=None) -> None:
    """Open the store (maybe a fresh file: races the migration), add the same images as every other
    process (races the content-hash dedup), then label each one."""
    from histoapp.store import open_store

    if start_event is not None:
        start_event.wait(30)
    store = open_store(url)
    ids = [store.add_image(p, dataset="breakhis") for p in paths]
    for k, image_id in enumerate(ids):
        store.annotate(
            image_id,
            annotator,
            label=k % 2,
            note=f"{annotator}:{k}",
            confidence=k / len(ids),
            submission_id=f"{annotator}-{k}",
        )
    store.close()


def write_forever(url: str, annotator: str, ready) -> None:
    """Label images in a loop until killed; every write carries a submission id."""
    from histoapp.store import open_store

    store = open_store(url)
    ids = store.queue(mode="all", limit=None)
    k = 0
    while True:
        image_id = ids[k % len(ids)]
        store.annotate(
            image_id, annotator, label=k % 2, note=f"write {k} pid {os.getpid()}", submission_id=f"{annotator}-{k}"
        )
        k += 1
        if k == 5:
            ready.set()

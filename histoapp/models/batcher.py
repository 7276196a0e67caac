"""Dynamic batching of the models' forward passes across concurrent requests.

Every prediction request (Predict tab or API) checks its caller's role and rate in its own Gradio event, then hands
its work to the app's one ``Batcher``: a patch for one model (the Predict tab), or a whole API call (read the
uploads, run both models, answer). One worker thread runs the jobs: it takes the oldest job and every queued job
of the same kind (same model, same options), up to ``max_batch``, and runs them as one batch; model passes that
a batch asks for run in that same thread, in batches of at most ``max_batch``. Nothing waits for a batch to fill:
a lone request runs at once, and requests that arrive while a batch runs form the next one.
On a 2-core CPU this keeps one core on the models (one batch at a time, torch threads set by the registry) and one
on the web server; a batch of 16 small patches costs a fraction of 16 single passes.

Gradio's own batching (``batch=True``) was measured against this (``bench/classroom.py``) and not used: it hands
the function only the first request of a batch, so the role check and the public rate limit, which are per
request, could not be applied to the others."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Job:
    group: Hashable
    fn: Callable[[list], Sequence]
    item: object
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None


class Batcher:
    """``run(group, fn, item)``: ``fn(items) -> results`` (one result per item, in order) is called with this item
    and the other queued items of the same ``group``; ``group`` must identify ``fn`` (model key and options)."""

    def __init__(self, max_batch: int = 16):
        self.max_batch = max(1, int(max_batch))
        self._jobs: list[_Job] = []
        self._cv = threading.Condition()
        self._worker: threading.Thread | None = None
        self.batches: list[int] = []  # sizes of the batches run so far (the last 1000; for tests and benches)

    def run(self, group: Hashable, fn: Callable[[list], Sequence], item):
        return self.map(group, fn, [item])[0]

    def map(self, group: Hashable, fn: Callable[[list], Sequence], items: Sequence) -> list:
        """``fn``'s results for ``items``, batched with whatever else is queued for ``group``."""
        if self.max_batch == 1 or threading.current_thread() is self._worker:
            # No batching (the caller's thread runs its own passes), or a batch's work asking for more passes:
            # they run here, in batches of at most max_batch.
            items = list(items)
            return [
                r for i in range(0, len(items), self.max_batch) for r in self._call(fn, items[i : i + self.max_batch])
            ]
        jobs = [_Job(group, fn, it) for it in items]
        with self._cv:
            self._jobs.extend(jobs)
            if self._worker is None:
                self._worker = threading.Thread(target=self._loop, name="histoapp-batcher", daemon=True)
                self._worker.start()
            self._cv.notify()
        for job in jobs:
            job.done.wait()
        errors = [j.error for j in jobs if j.error is not None]
        if errors:
            raise errors[0]
        return [j.result for j in jobs]

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._jobs:
                    self._cv.wait()
                group = self._jobs[0].group
                batch = [j for j in self._jobs if j.group == group][: self.max_batch]
                self._jobs = [j for j in self._jobs if j not in batch]
            self._execute(batch)

    def _execute(self, batch: list[_Job]) -> None:
        self.batches = self.batches[-999:] + [len(batch)]
        try:
            results = self._call(batch[0].fn, [j.item for j in batch])
        except Exception as exc:
            if len(batch) > 1:  # one bad patch must not fail the others: each runs alone
                for job in batch:
                    self._execute([job])
                return
            batch[0].error = exc
            batch[0].done.set()
            return
        for job, result in zip(batch, results, strict=True):
            job.result = result
            job.done.set()

    @staticmethod
    def _call(fn: Callable[[list], Sequence], items: list) -> list:
        results = list(fn(items))
        if len(results) != len(items):
            raise RuntimeError(f"a batch of {len(items)} gave {len(results)} results")
        return results

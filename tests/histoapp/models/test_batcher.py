"""The batcher: concurrent requests' items run together, per group, a lone one at once, a bad one alone."""

import threading
import time

import pytest

from histoapp.models.batcher import Batcher


def _slow_double(calls, delay=0.2):
    def fn(items):
        calls.append(list(items))
        time.sleep(delay)
        return [2 * x for x in items]

    return fn


def test_requests_that_arrive_while_a_batch_runs_form_the_next_batch():
    b, calls = Batcher(max_batch=8), []
    fn = _slow_double(calls)
    results = {}

    def request(x):
        results[x] = b.run("double", fn, x)

    first = threading.Thread(target=request, args=(0,))
    first.start()
    time.sleep(0.05)  # the first one runs alone, at once; these queue behind it
    others = [threading.Thread(target=request, args=(x,)) for x in range(1, 6)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(10)
    assert results == {x: 2 * x for x in range(6)}
    assert calls[0] == [0] and sorted(calls[1]) == [1, 2, 3, 4, 5] and len(calls) == 2


def test_batches_hold_one_group_each_and_at_most_max_batch():
    b, calls = Batcher(max_batch=3), []
    gate = threading.Event()

    def blocker(items):
        gate.wait(10)
        return items

    hold = threading.Thread(target=b.run, args=("hold", blocker, None))
    hold.start()
    time.sleep(0.05)
    fn_a, fn_b = _slow_double(calls, 0), lambda items: (calls.append(["b", *items]), [-x for x in items])[1]
    out = {}
    threads = [threading.Thread(target=lambda x=x: out.setdefault(x, b.run("a", fn_a, x))) for x in range(5)]
    threads.append(threading.Thread(target=lambda: out.setdefault("b", b.run("b", fn_b, 7))))
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in [hold, *threads]:
        t.join(10)
    assert out == {0: 0, 1: 2, 2: 4, 3: 6, 4: 8, "b": -7}
    assert all(len(c) <= 3 for c in calls if c[0] != "b") and ["b", 7] in calls
    assert sorted(x for c in calls if c[0] != "b" for x in c) == [0, 1, 2, 3, 4]


def test_a_failing_item_fails_alone():
    b = Batcher(max_batch=8)

    def fn(items):
        if "bad" in items:
            raise ValueError("bad patch")
        return [s.upper() for s in items]

    assert b.map("g", fn, ["a", "b"]) == ["A", "B"]
    results, errors = {}, {}

    def request(x):
        try:
            results[x] = b.run("g", fn, x)
        except ValueError as exc:
            errors[x] = str(exc)

    threads = [threading.Thread(target=request, args=(x,)) for x in ("c", "bad", "d")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {"c": "C", "d": "D"} and errors == {"bad": "bad patch"}


def test_max_batch_one_runs_in_the_callers_thread():
    b, seen = Batcher(max_batch=1), []
    assert b.map("g", lambda items: (seen.append(threading.current_thread()), items)[1], [1, 2]) == [1, 2]
    assert seen == [threading.current_thread()] * 2
    with pytest.raises(RuntimeError, match="gave 0 results"):
        b.run("g", lambda items: [], 1)


def test_a_batch_asking_for_more_passes_runs_them_in_its_own_thread_in_chunks():
    # An API call's batch (read, both models, answer) asks for the models' passes: they must not queue behind it.
    b, chunks = Batcher(max_batch=2), []

    def passes(items):
        chunks.append(list(items))
        return [x + 1 for x in items]

    def whole_call(calls):
        return [b.map("pass", passes, c) for c in calls]

    assert b.run("call", whole_call, [1, 2, 3]) == [2, 3, 4]
    assert chunks == [[1, 2], [3]]

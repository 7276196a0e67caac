"""The Annotate tab's handlers are plain functions of the app context: label, auto-next, skip, undo/redo and
adjudication on a real SQLite store, without a browser."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from histoapp.settings import Settings
from histoapp.store import open_store
from histoapp.ui.tabs import annotate as tab


def _view(current=None, **kw) -> tab.View:
    """The view as the page sends it: the annotator box "ann", the "mine" queue, no filters."""
    return tab.View(name="ann", current=current, **kw)


@pytest.fixture
def ctx(tmp_path):
    from trainer.data.synthetic import generate

    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    root = generate(tmp_path / "p", patients_per_subtype=1, images_per_magnification=1, size=40, seed=2)
    for path in sorted(root.rglob("*-40-*.png"))[:3]:
        store.add_image(path, dataset="breakhis", magnification="40X")
    yield SimpleNamespace(store=store, settings=Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    store.close()


def test_label_moves_on_and_undo_redo_come_back(ctx):
    first = tab.show_next(ctx, _view(), None)
    assert set(first) == set(tab.VIEW_OUTPUTS)
    cur = first["view"].current
    assert cur is not None and first["viewer"] is not None and "0 done, 3 left" in first["progress"]
    out = tab.save_label(ctx, 1, None, True, 0.9, [], "", "k1", _view(cur), None)
    assert out["view"].current != cur and f"Saved image #{cur}: **malignant**" in out["status"]
    again = tab.save_label(ctx, 1, None, False, 0.9, [], "", "k1", _view(cur), None)
    assert again["view"].current == cur and "(already saved)" in again["status"]  # a retried click applies once
    undone = tab.undo_redo(ctx, "undo", _view(out["view"].current), None)
    assert undone["view"].current == cur and "removed the label" in undone["status"]
    redone = tab.undo_redo(ctx, "redo", _view(cur), None)
    assert "label is now **malignant**" in redone["status"]
    assert tab.save_label(ctx, 0, None, True, 1, [], "", "", _view(), None)["status"] == "No image on screen."


def test_leaving_the_name_box_sends_nothing_for_a_login_and_never_the_status(ctx):
    """Leaving the annotator box is the first thing a click on a label button does; the refresh it fires runs
    next to that click and must not undo its reply (the "Saved image" message, the next image)."""
    cur = tab.show_next(ctx, _view(), None)["view"].current
    login = SimpleNamespace(username="ann")
    assert tab.rename(ctx, tab.View(name="someone else", current=cur), login) == {}  # the login is the annotator
    typed = tab.rename(ctx, _view(cur), None)  # open mode: the typed name's queue
    assert typed["view"].current == cur and "**ann**: 0 done" in typed["progress"] and "status" not in typed


def test_skip_keeps_the_image_out_of_this_session(ctx):
    first = tab.show_next(ctx, _view(), None)["view"].current
    out = tab.skip_image(ctx, _view(first), None)
    assert out["view"].skipped == [first] and out["view"].current not in (None, first)
    assert out["status"].startswith(f"Skipped image #{first}")


def test_an_event_gets_its_own_view_from_the_controls_and_the_state(ctx):
    """``bind_view``: the inputs are the controls (``CONTROLS``), the state and the event's extra components; the
    handler gets a View with the controls' values, and the stored state is changed only by the returned one."""
    seen = []

    def handler(ctx, first, extra, v, request):
        seen.append((first, extra, v))
        v.skipped.append(99)
        return {"status": "ok", "view": v}

    box, state = object(), object()
    bound = tab.bind_view(ctx, {"status": box, "view": state}, handler, "first")
    stored = tab.View(current=4, skipped=[2], center=(0.2, 0.3))
    out = bound("dr_a", "all", "40X", "uploads", True, 3, stored, "extra")
    first, extra, v = seen[0]
    assert (first, extra) == ("first", "extra") and out[box] == "ok" and out[state] is v
    assert (v.name, v.mode, v.magnification, v.dataset, v.blind, v.zoom) == ("dr_a", "all", "40X", "uploads", True, 3)
    assert (v.current, v.center, v.filters) == (4, (0.2, 0.3), ("40X", "uploads"))
    assert stored.skipped == [2] and stored.name == ""  # the stored state is untouched


def test_adjudication_needs_a_conflict_and_then_saves(ctx):
    assert "pick a conflict first" in tab.adjudicate(ctx, None, 1, "", "", "boss", None)[0]
    image = ctx.store.queue(None, limit=1)[0]
    ctx.store.annotate(image, "a", label=0)
    ctx.store.annotate(image, "b", label=1)
    message, table = tab.adjudicate(ctx, image, 1, "", "agreed", "boss", None)
    assert message == f"Final label saved for image #{image}."
    img, text = tab.show_conflict(ctx, image, "boss", False, None)
    assert img is not None and "a: benign" in text and "b: malignant" in text

"""The Annotate tab's handlers are plain functions of the app context: label, auto-next, skip, undo/redo and
adjudication on a real SQLite store, without a browser."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from histoapp.settings import Settings
from histoapp.store import open_store
from histoapp.ui.tabs import annotate as tab

# (annotator box, queue mode, magnification, dataset, skipped, blind, zoom, current image)
VIEW = ("ann", "mine", tab.ANY, tab.ANY)


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
    cur, img, text, progress, message, recent = tab.show_next(ctx, *VIEW, [], False, 1, None, None)
    assert cur is not None and img is not None and "0 done, 3 left" in progress
    out = tab.save_label(ctx, 1, None, *VIEW, [], False, 1, cur, True, 0.9, [], "", "k1", None)
    assert out[0] != cur and f"Saved image #{cur}: **malignant**" in out[4]
    again = tab.save_label(ctx, 1, None, *VIEW, [], False, 1, cur, False, 0.9, [], "", "k1", None)
    assert again[0] == cur and "(already saved)" in again[4]  # a retried click (same submission id) applies once
    undone = tab.undo_redo(ctx, "undo", *VIEW, [], False, 1, out[0], None)
    assert undone[0] == cur and "removed the label" in undone[4]
    redone = tab.undo_redo(ctx, "redo", *VIEW, [], False, 1, cur, None)
    assert "label is now **malignant**" in redone[4]
    assert (
        tab.save_label(ctx, 0, None, *VIEW, [], False, 1, None, True, 1, [], "", "", None)[4] == "No image on screen."
    )


def test_leaving_the_name_box_sends_nothing_for_a_login_and_never_the_status(ctx):
    """Leaving the annotator box is the first thing a click on a label button does; the refresh it fires runs
    next to that click and must not undo its reply (the "Saved image" message, the next image)."""
    import gradio as gr

    cur = tab.show_next(ctx, *VIEW, [], False, 1, None, None)[0]
    login = SimpleNamespace(username="ann")
    out = tab.rename(ctx, "someone else", *VIEW[1:], [], False, 1, cur, login)
    assert len(out) == tab.VIEW_OUTPUTS and all(o == gr.update() for o in out)  # the login is the annotator
    typed = tab.rename(ctx, *VIEW, [], False, 1, cur, None)  # open mode: the typed name's queue
    assert typed[0] == cur and "**ann**: 0 done" in typed[3] and typed[4] == gr.update()


def test_skip_keeps_the_image_out_of_this_session(ctx):
    first = tab.show_next(ctx, *VIEW, [], False, 1, None, None)[0]
    skipped, nxt, *_ = tab.skip_image(ctx, *VIEW, [], False, 1, first, None)
    assert skipped == [first] and nxt not in (None, first)
    message = tab.skip_image(ctx, *VIEW, [], False, 1, first, None)[5]
    assert message.startswith(f"Skipped image #{first}")


def test_adjudication_needs_a_conflict_and_then_saves(ctx):
    assert "pick a conflict first" in tab.adjudicate(ctx, None, 1, "", "", "boss", None)[0]
    image = ctx.store.queue(None, limit=1)[0]
    ctx.store.annotate(image, "a", label=0)
    ctx.store.annotate(image, "b", label=1)
    message, table = tab.adjudicate(ctx, image, 1, "", "agreed", "boss", None)
    assert message == f"Final label saved for image #{image}."
    img, text = tab.show_conflict(ctx, image, "boss", False, None)
    assert img is not None and "a: benign" in text and "b: malignant" in text

"""The Annotate tab in a real browser: import generated patches, label with keyboard shortcuts, undo, reload,
find the labels still there, and download an export."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from histoapp.settings import Settings

pytestmark = pytest.mark.browser


def _open_annotate(page, url):
    page.goto(url)
    page.get_by_role("tab", name="Annotate").click()
    page.locator("#ann-benign").wait_for(state="visible")
    page.locator("#ann-progress").filter(has_text=re.compile("images")).wait_for()  # the page-load event is done


def _imported_store(tmp_path, seed: int):
    """(settings, store) with a small generated BreakHis-like set imported into the app's database."""
    from histoapp.store import open_store
    from trainer.data.synthetic import generate

    data = tmp_path / "data"
    patches = generate(data / "patches", patients_per_subtype=1, images_per_magnification=1, size=32, seed=seed)
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=data)
    store = open_store(settings.database_url)
    store.import_folder(patches)
    return settings, store


def _download_export(page, button: str) -> str:
    """Press one of the Export panel's buttons and return the downloaded file's path."""
    page.get_by_text("Export", exact=True).click()
    page.locator(f"#ann-export-{button}").click()
    link = page.locator("#ann-export-file a").first
    link.wait_for()
    with page.expect_download() as dl:
        link.click()
    return dl.value.path()


def _status(page, pattern):
    page.locator("#ann-status").filter(has_text=re.compile(pattern)).wait_for()


def test_label_with_keys_undo_reload_and_export(serve_app, page, tmp_path):
    from trainer.data.synthetic import generate

    data = tmp_path / "data"
    patches = generate(data / "patches", patients_per_subtype=1, images_per_magnification=1, size=48, seed=3)
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=data)
    url = serve_app(settings)
    _open_annotate(page, url)

    page.locator("#ann-annotator input, #ann-annotator textarea").first.fill("dr_test")
    page.locator("#ann-annotator input, #ann-annotator textarea").first.press("Enter")
    page.get_by_text("Import a folder or a BreakHis root").click()
    page.locator("#ann-import-path input, #ann-import-path textarea").first.fill(str(patches))
    page.locator("#ann-import").click()
    page.locator("#ann-import-msg").filter(has_text="Imported 32 new image(s)").wait_for()
    page.locator("#ann-info").filter(has_text="Image #1").wait_for()

    page.locator("#ann-progress").click()  # focus out of the text boxes: keys are shortcuts again
    page.keyboard.press("b")
    _status(page, r"Saved image #1: benign")
    page.locator("#ann-info").filter(has_text="Image #2").wait_for()
    page.keyboard.press("m")
    _status(page, r"Saved image #2: malignant")
    page.keyboard.press("5")
    _status(page, r"Saved image #3: malignant · ductal carcinoma")
    page.keyboard.press("u")
    _status(page, r"Undo: image #3 — removed the label")
    page.locator("#ann-info").filter(has_text="Image #3").wait_for()
    # Typing in a text box is not a shortcut.
    note = page.get_by_label("Note")
    note.click()
    page.keyboard.type("bm5")
    assert note.input_value() == "bm5"
    page.wait_for_timeout(1000)
    _status(page, r"Undo: image #3")
    note.fill("")

    page.reload()
    _open_annotate(page, url)
    # The name comes back from the browser's storage and the labels from the database.
    assert page.locator("#ann-annotator input, #ann-annotator textarea").first.input_value() == "dr_test"
    page.locator("#ann-progress").filter(has_text="dr_test: 2 done, 30 left").wait_for()
    recent = page.locator("#ann-recent")
    recent.filter(has_text="benign").wait_for()
    assert "malignant" in recent.inner_text()
    page.locator("#ann-info").filter(has_text="Image #3").wait_for()  # the undone one is next again

    db = sqlite3.connect(data / "annotations.db")
    rows = db.execute(
        "SELECT image_id, label, subtype FROM annotations WHERE annotator='dr_test' ORDER BY image_id"
    ).fetchall()
    keys = db.execute("SELECT key FROM submissions").fetchall()
    db.close()
    assert rows == [(1, 0, None), (2, 1, None)]
    assert len(keys) == 3 and all(k[0] for k in keys)  # every click carried a browser-made submission id

    text = Path(_download_export(page, "csv")).read_text(encoding="utf-8")
    assert "dr_test" in text and text.count("\n") == 3  # header + 2 labels


def test_import_outside_allowed_roots_shows_clear_error(serve_app, page, tmp_path):
    url = serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    _open_annotate(page, url)
    page.get_by_text("Import a folder or a BreakHis root").click()
    page.locator("#ann-import-path input, #ann-import-path textarea").first.fill("/etc")
    page.locator("#ann-import").click()
    page.locator("#ann-import-msg").filter(has_text="outside the folders this app may read").wait_for()


def test_adjudicate_a_conflict_and_download_the_dataset(serve_app, page, tmp_path):
    import zipfile

    settings, store = _imported_store(tmp_path, seed=4)
    store.annotate(5, "dr_a", label=1)
    store.annotate(5, "dr_b", label=0)
    store.annotate(6, "dr_a", label=0)
    store.close()
    url = serve_app(settings)
    _open_annotate(page, url)
    page.locator("#ann-annotator input, #ann-annotator textarea").first.fill("chief")

    page.get_by_text("Adjudication", exact=True).click()
    page.get_by_role("button", name="Refresh conflicts").click()
    page.locator("#ann-conflicts").get_by_text("dr_a: malignant; dr_b: benign").filter(visible=True).first.click()
    page.get_by_text("Votes: dr_a: malignant").wait_for()
    page.get_by_label("malignant", exact=True).check()
    page.get_by_role("button", name="Save final label").click()
    page.get_by_text("Final label saved for image #5").wait_for()

    with zipfile.ZipFile(_download_export(page, "dataset")) as z:
        names = z.namelist()
    assert "manifest.csv" in names and "provenance.json" in names
    assert sum(n.endswith(".png") for n in names) == 2  # the adjudicated image and the single-annotator one


def test_deleted_file_shows_a_clear_message_and_labels_stay(serve_app, page, tmp_path):
    settings, store = _imported_store(tmp_path, seed=6)
    store.annotate(1, "dr_a", label=1, note="seen before the file went")
    path = store.image(1)["path"]
    store.close()
    import os

    os.remove(path)
    page.add_init_script("localStorage.setItem('histoapp-annotator', 'dr_a')")
    url = serve_app(settings)
    _open_annotate(page, url)
    page.get_by_label("Queue").click()
    page.get_by_role("option", name=re.compile("^all:")).click()
    info = page.locator("#ann-info")
    info.filter(has_text="cannot be shown: file not found").wait_for()
    text = info.inner_text()
    assert "Image #1" in text and "annotations are kept" in text and "Your label: malignant" in text


def test_subtype_buttons_sit_under_their_own_class(serve_app, page, tmp_path):
    from histoapp.ui.annotate_view import SUBTYPE_BUTTONS
    from trainer.data.records import SUBTYPE_LABEL

    _open_annotate(page, serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")))
    heads = {0: page.locator("#ann-benign").bounding_box(), 1: page.locator("#ann-malignant").bounding_box()}
    for key, code, _ in SUBTYPE_BUTTONS:
        box = page.locator(f"#ann-sub-{key}").bounding_box()
        own, other = heads[SUBTYPE_LABEL[code]], heads[1 - SUBTYPE_LABEL[code]]
        centre = box["x"] + box["width"] / 2
        assert own["x"] <= centre <= own["x"] + own["width"], code  # in its class's column
        assert not other["x"] <= centre <= other["x"] + other["width"], code
        assert box["y"] > own["y"], code  # below its class button


def test_skip_says_what_it_did(serve_app, page, tmp_path):
    settings, _ = _imported_store(tmp_path, seed=5)
    _open_annotate(page, serve_app(settings))
    page.locator("#ann-skip").click()
    page.locator("#ann-status").get_by_text(re.compile(r"Skipped image #\d+")).wait_for()


def test_a_name_typed_then_a_label_click_keeps_the_saved_message(serve_app, page, tmp_path, monkeypatch):
    """Clicking a label button right after typing a name also leaves the name box, whose refresh of the queue
    then runs next to the click. Made slow here (its result computed before the label is saved, returned
    after): it must not wipe the "Saved image" message or put the labelled image back (open mode)."""
    import functools
    import threading
    import time

    from histoapp.ui.tabs import annotate

    slow, returned = annotate.refilter, threading.Event()

    @functools.wraps(slow)  # its signature: Gradio passes the request by it
    def refilter(*args, **kwargs):
        out = slow(*args, **kwargs)
        time.sleep(1.5)
        returned.set()
        return out

    monkeypatch.setattr(annotate, "refilter", refilter)
    settings, store = _imported_store(tmp_path, seed=7)
    _open_annotate(page, serve_app(settings))
    page.locator("#ann-info").filter(has_text="Image #1").wait_for()
    page.locator("#ann-annotator input, #ann-annotator textarea").first.fill("dr_quick")
    page.locator("#ann-benign").click()
    page.locator("#ann-progress").filter(has_text="dr_quick: 1 done").wait_for()
    assert returned.wait(30)
    page.wait_for_timeout(1000)  # its reply reaches the page
    assert page.locator("#ann-status").inner_text().startswith("Saved image #1: benign")
    assert "Image #2" in page.locator("#ann-info").inner_text()
    assert [(r["image_id"], r["annotator"]) for r in store.annotations()] == [(1, "dr_quick")]

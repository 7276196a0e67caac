"""The Annotate tab's view helpers: zoom, blind mode, a missing file's message, progress and tables."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
from PIL import Image

from histoapp.store import open_store
from histoapp.ui import annotate_view as view
from histoapp.ui.shortcuts import KEYMAP


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    yield s
    s.close()


@pytest.fixture
def patch(tmp_path):
    from trainer.data.synthetic import generate

    root = generate(tmp_path / "p", patients_per_subtype=1, images_per_magnification=1, size=40, seed=2)
    return sorted(root.rglob("*.png"))[0]


def test_zoom_window_and_click_mapping():
    img = Image.new("RGB", (100, 50))
    img.putpixel((99, 49), (255, 0, 0))
    assert view.zoomed(img, 1, None) is img
    z = view.zoomed(img, 4, (1.0, 1.0))  # window pushed inside the image, bottom-right corner
    assert z.size == img.size and z.getpixel((99, 49))[0] > 100
    # at zoom 2 centred, the window is x 25..75, y 12..37: a click in the middle stays in the middle
    cx, cy = view.click_to_center(img.size, 2, (0.5, 0.5), (50, 25))
    assert cx == pytest.approx(0.5) and cy == pytest.approx(0.5, abs=0.02)
    assert view.click_to_center(img.size, 1, None, (10, 40)) == (0.1, 0.8)


def test_blind_mode_hides_predictions_and_source_labels(store, patch):
    i = store.add_image(patch, dataset="breakhis", label="benign", subtype="A")
    store.add_prediction(i, model="resnet34", prob_malignant=0.8, label=1)
    seen = view.details(store, i, "ann", blind=False)
    assert "resnet34" in seen and "Source label: benign" in seen
    blind = view.details(store, i, "ann", blind=True)
    assert "resnet34" not in blind and "Source label" not in blind and "Blind mode" in blind


def test_missing_file_message_keeps_labels(store, patch, tmp_path):
    copy = tmp_path / "gone.png"
    shutil.copy(patch, copy)
    i = store.add_image(copy, dataset="upload")
    store.annotate(i, "ann", label=1, subtype="PC")
    copy.unlink()
    img, text = view.viewer_content(store, i, "ann", blind=False)
    assert img is None and text.startswith("⚠️") and "file not found" in text and "annotations are kept" in text
    assert "Your label: **malignant" in text


def test_progress_and_tables(store, patch):
    assert "No images yet" in view.progress_text(store.progress("ann"), "ann")
    i = store.add_image(patch, dataset="breakhis")
    store.annotate(i, "ann", label=0, blur=True, note="faint")
    store.annotate(i, "bob", label=1)
    assert "**ann**: 1 done, 0 left" in view.progress_text(store.progress("ann"), "ann")
    recent = view.recent_table(store, "ann")
    assert f"<td>{patch.name} <small>(#{i})</small></td>" in recent  # its file's name, not only an id
    assert "<img alt='' src='data:image/png;base64," in recent and "<td>blur</td><td>faint</td>" in recent
    store.annotate(i, "ann", label=0, note="<script>x</script>")
    assert "<script>" not in view.recent_table(store, "ann")  # the note is escaped
    assert "No labels yet" in view.recent_table(store, "nobody")
    assert view.conflicts_table(store).values.tolist()[0][:2] == [i, "label"]
    head, pairs, _ = view.agreement_tables(store)
    assert "ann, bob" in head and pairs.values.tolist()[0][:3] == ["ann", "bob", 1]


def test_resolve_annotator_prefers_the_logged_in_user():
    class Req:
        username = "dr_login"

    assert view.resolve_annotator("typed", Req()) == "dr_login"
    hf = SimpleNamespace(username=None, session={"oauth_info": {"userinfo": {"preferred_username": "hf-path"}}})
    assert view.resolve_annotator("typed", hf) == "hf-path"  # a Hugging Face login too
    assert view.resolve_annotator("  typed ", None) == "typed"


def test_every_shortcut_has_a_button():
    import inspect

    from histoapp.ui.tabs import annotate

    src = inspect.getsource(annotate)
    for elem_id in KEYMAP.values():
        assert f'"{elem_id}"' in src or elem_id.startswith("ann-sub-")
    assert 'elem_id=f"ann-sub-{key}"' in src and sorted(k for k in KEYMAP if k.isdigit()) == [
        str(k) for k in range(1, 9)
    ]

"""The Slide tab's handlers without a browser (score, click to tiles, exports, the queue, bad input then a good
one) and its tile routes (role checks, unknown and malformed ids, traversal) on a plain FastAPI app."""

import re
from types import SimpleNamespace

import pytest

from histoapp import auth
from histoapp.models.ops import LocalModels
from histoapp.models.registry import ModelRegistry
from histoapp.models.slides import SlideCache
from histoapp.settings import Settings
from histoapp.ui import slide_routes
from histoapp.ui import slide_view as sv
from histoapp.ui.tabs import slide as tab
from tests import slide_data


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slidetab")
    settings = Settings(runs_dir=tmp / "runs", data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'db.sqlite'}")
    registry = ModelRegistry(settings, hub_models=[])
    ns = SimpleNamespace(settings=settings, registry=registry, models=LocalModels(registry), slides=SlideCache())
    from histoapp.store import open_store

    ns.store = open_store(settings.database_url)
    return ns


@pytest.fixture(scope="module")
def slide_file(tmp_path_factory):
    return str(slide_data.idc_slide(tmp_path_factory.mktemp("s") / "patient.tif", window=500))


def _analyze(ctx, path, **kw):
    args = dict(example="", magnification=tab.NO_MAG, mpp=None, cnn_key=ctx.registry.default_key("cnn"), vlm_key=None)
    args.update(kw)
    return tab.analyze(ctx, path, context=False, opacity=0.5, progress=lambda *a, **k: None, **args)


@pytest.fixture(scope="module")
def scored(ctx, slide_file):
    return _analyze(ctx, slide_file)


def test_score_shows_maps_summary_gallery_viewer(scored):
    assert scored["errors"] == "" and scored["cnn_map"] is not None and scored["vlm_map"] is None
    assert "tissue area" in scored["summary"] and scored["top"]
    assert scored["view"].slide_id in scored["viewer"]


def test_click_the_map_gives_tiles_with_gradcam(ctx, scored):
    view = scored["view"]
    session = ctx.slides.get(view.slide_id, None)
    t = session.results["cnn"].scored[0]
    s = view.thumb_scale
    out = tab.click_map(ctx, view, "cnn", 0.5, SimpleNamespace(index=[(t.x + 1) * s, (t.y + 1) * s]))
    assert len(out["region"]) == 6 and f"x={t.x}" in out["region"][0][1]
    assert out["region"][0][0].width >= 128  # shown larger than the 50 px tile, with its map
    assert tab.click_viewer(ctx, view, "cnn", f"{t.x},{t.y}", 0.5)["region"]
    assert tab.click_viewer(ctx, view, "cnn", "../../etc", 0.5) == {}


def test_exports_and_queue(ctx, scored):
    import json
    from pathlib import Path

    files = tab.export(ctx, scored["view"], "cnn")["files"]
    assert {Path(f).suffix for f in files} == {".csv", ".png", ".geojson"}
    assert json.loads(Path(next(f for f in files if f.endswith(".geojson"))).read_text())["type"] == "FeatureCollection"
    msg = tab.send_uncertain(ctx, scored["view"], "cnn")
    assert msg.startswith(f"✅ Sent {tab.UNCERTAIN_K}"), msg
    assert len(ctx.store.queue(None)) >= tab.UNCERTAIN_K


def test_bad_input_then_a_good_one(ctx, slide_file, tmp_path):
    bad = _analyze(ctx, str(slide_data.huge_png(tmp_path / "bomb.png")))
    assert re.search(r"refused.*(pixels|MP)", bad["errors"]) and bad["cnn_map"] is None
    unscaled = slide_data.write_pyramid(tmp_path / "n.tif", slide_data.idc_canvas(window=300)[0], mpp=None)
    assert "no scale" in _analyze(ctx, str(unscaled))["errors"]
    glass = _analyze(ctx, str(slide_data.blank_slide(tmp_path / "glass.tif", 300)))
    assert "no tissue" in glass["errors"]
    good = _analyze(ctx, slide_file)
    assert good["errors"] == "" and good["cnn_map"] is not None


def test_handlers_need_the_annotator_role(ctx, slide_file, monkeypatch):
    monkeypatch.setattr(auth, "role_of", lambda settings, request: "viewer")
    with pytest.raises(Exception, match="annotator"):
        _analyze(ctx, slide_file)


# --- the tile routes ---------------------------------------------------------------------------------


@pytest.fixture
def client(ctx, scored, tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    app.cookie_id, app.tokens = "c", {"tok-alice": "alice", "tok-vera": "vera"}
    slide_routes.install(app, ctx)
    return TestClient(app), scored["view"].slide_id


def test_routes_serve_dzi_tiles_heat_and_viewer(client):
    c, sid = client
    r = c.get(f"/slide/{sid}/image.dzi")
    assert r.status_code == 200 and b"<Image" in r.content
    r = c.get(f"/slide/{sid}/image_files/0/0_0.jpeg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert c.get(f"/slide/{sid}/heat/cnn.png").status_code == 200
    assert c.get(f"/slide/{sid}/heat/vlm.png").status_code == 404  # not scored by a VLM
    assert c.get(f"/slide/{sid}/heat/disagree.png").status_code == 404  # needs both
    assert c.get("/slide/static/openseadragon.min.js").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/slide/AAAAAAAAAAAAAAAAAAAAAA/image.dzi",  # unknown id
        "/slide/..%2F..%2Fetc/image.dzi",  # traversal in the id
        "/slide/{sid}/image_files/0/..%2F..%2Fx.jpeg",  # traversal in the tile
        "/slide/{sid}/image_files/99/0_0.jpeg",  # no such level
        "/slide/{sid}/image_files/0/9_9.jpeg",  # no such tile
        "/slide/{sid}/heat/..%2Fcnn.png",
        "/slide/static/../../app.py",
        "/slide/static/images%2F..%2F..%2FLICENSE.txt",
    ],
)
def test_routes_refuse_unknown_ids_and_traversal(client, path):
    c, sid = client
    assert c.get(path.format(sid=sid)).status_code == 404


def test_routes_apply_the_role_check(ctx, client, tmp_path, monkeypatch):
    c, sid = client
    users = tmp_path / "users.json"
    auth.add_user(users, "alice", None, "annotator")
    auth.add_user(users, "vera", None, "viewer")
    monkeypatch.setattr(ctx.settings, "users_file", users)
    assert c.get(f"/slide/{sid}/image.dzi").status_code == 403  # not logged in
    c.cookies.set("access-token-c", "tok-vera")
    assert c.get(f"/slide/{sid}/image.dzi").status_code == 403  # a viewer
    assert c.get("/slide/static/openseadragon.min.js").status_code == 403
    c.cookies.set("access-token-c", "tok-alice")
    # alice is an annotator, but this slide was opened in open mode (no owner): not hers
    assert c.get(f"/slide/{sid}/image.dzi").status_code == 404
    ctx.slides.get(sid, None).owner = "alice"
    try:
        assert c.get(f"/slide/{sid}/image.dzi").status_code == 200
    finally:
        ctx.slides.get(sid, "alice").owner = None


def test_viewer_layer_falls_back_to_a_scored_model(ctx, scored):
    import json

    view = scored["view"]
    layers = json.loads(tab.show_layer(ctx, view, "disagree", 0.3)["viewer"])["layers"]
    assert list(layers) == ["cnn"]  # no VLM ran: no disagreement layer
    assert set(tab.reblend(ctx, view, 0.7, "cnn")) == {"cnn_map", "vlm_map", "diff_map", "viewer"}


def test_viewer_value_names_routes_not_paths(scored):
    value = sv.viewer_value(scored["view"].slide_id, ["cnn"], 0.4)
    assert "/tmp" not in value and value.count("slide/") == 2


def test_viewer_draws_with_the_canvas_drawer():
    # OpenSeadragon 6 draws with WebGL by default: in a browser without a GPU (software GL, as headless Chromium)
    # each frame of a pan or zoom took up to 1 s (bench/slide_viewer.py, bench/README.md); the 2D canvas drawer
    # keeps the viewer responsive there.
    options = re.search(r"OpenSeadragon\(\{(.*?)\}\);", sv.VIEWER_JS, re.S)
    assert options and re.search(r"\bdrawer:\s*'canvas'", options.group(1))


def test_a_server_slide_is_listed_and_read_in_place(ctx, tmp_path, monkeypatch):
    from histoapp.models import slides

    folder = tmp_path / "scanner"
    (folder / "case1").mkdir(parents=True)
    slide = slide_data.idc_slide(folder / "case1" / "p.tif", window=300)
    (folder / ".hidden.tif").write_bytes(b"not listed")
    (folder / "notes.txt").write_text("not a slide")
    monkeypatch.setattr(ctx.settings, "slide_dir", folder)
    listed = dict(tab.examples(ctx.settings))
    assert listed["server: case1/p.tif"] == str(slide)
    assert not any(".hidden" in label or "notes" in label for label in listed)
    size = slide.stat().st_size
    out = _analyze(ctx, None, example="server: case1/p.tif")  # the page offers labels, never server paths
    assert out["errors"] == "" and out["cnn_map"] is not None
    session = ctx.slides.get(out["view"].slide_id, None)
    assert session.path == slide and session.folder.name == session.id  # read where it lies, files in its own folder
    assert (session.folder / "cnn").is_dir() and not list(session.folder.glob("*.tif"))
    slides._close(session)
    assert slide.is_file() and slide.stat().st_size == size and not session.folder.exists()
    # A value the list never offered (a forged request: a path, even a listed slide's) is not opened.
    other = slide_data.idc_slide(tmp_path / "elsewhere.tif", window=300)
    assert "not in the list" in _analyze(ctx, None, example=str(other))["errors"]
    assert "not in the list" in _analyze(ctx, None, example=str(slide))["errors"]
    assert "not in the list" in _analyze(ctx, None, example="/etc/passwd")["errors"]

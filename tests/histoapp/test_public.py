"""Public mode's bounds (histoapp.public, histoapp.visitor_files): the rate limit counts what a client cannot
choose, one request decodes a bounded number of pixels, and files written for visitors expire."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio.context import LocalContext
from PIL import Image

from histoapp import public, visitor_files
from histoapp.models import uploads
from histoapp.settings import Settings
from histoapp.ui import predict_view


@pytest.fixture(autouse=True)
def _fresh():
    public._predictions.clear()
    yield
    public._predictions.clear()
    LocalContext.request.set(None)


def _public(tmp_path, **kw) -> Settings:
    return Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", public=True, **kw)


def _request(peer: str, session: str, forwarded: str | None = None):
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return SimpleNamespace(username=None, session_hash=session, client=SimpleNamespace(host=peer), headers=headers)


def test_a_fresh_session_hash_per_call_does_not_reset_the_rate(tmp_path):
    """The attack that passed 24 of 24 calls: a new session hash on every call, from one address."""
    settings = _public(tmp_path, public_predictions_per_min=3)
    passed = 0
    for i in range(24):
        LocalContext.request.set(_request("203.0.113.7", f"forged-{i}"))
        try:
            public.check_rate(settings)
            passed += 1
        except gr.Error as exc:
            assert "3 predictions a minute" in str(exc) and "try again in" in str(exc)
    assert passed == 3
    LocalContext.request.set(_request("203.0.113.8", "forged-x"))
    public.check_rate(settings)  # another address has its own budget
    # An IPv6 client picks any address in its /64: one budget for all of them.
    for i in range(3):
        LocalContext.request.set(_request(f"2001:db8::{i + 1}", "s"))
        public.check_rate(settings)
    LocalContext.request.set(_request("2001:db8::ffff", "s"))
    with pytest.raises(gr.Error):
        public.check_rate(settings)


def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path):
    plain = _public(tmp_path)
    # Not behind a proxy: the header is the client's own text.
    assert public.client_address(plain, "198.51.100.4", "1.2.3.4") == "198.51.100.4"
    proxied = _public(tmp_path, trusted_proxies=["10.0.0.0/8"])
    # Behind one: the last hop the proxy saw; what the client wrote further left proves nothing.
    assert public.client_address(proxied, "10.1.2.3", "1.2.3.4, 198.51.100.4") == "198.51.100.4"
    assert public.client_address(proxied, "10.1.2.3", "198.51.100.4, 10.9.9.9") == "198.51.100.4"
    assert public.client_address(proxied, "10.1.2.3", "garbage, 198.51.100.4") == "198.51.100.4"
    assert public.client_address(proxied, "10.1.2.3", None) == "10.1.2.3"
    # A forged header from a client that is not the proxy is ignored.
    assert public.client_address(proxied, "198.51.100.9", "10.0.0.1") == "198.51.100.9"
    settings = _public(tmp_path, trusted_proxies=["10.0.0.0/8"], public_predictions_per_min=2)
    for i in range(2):
        LocalContext.request.set(_request("10.0.0.5", f"s{i}", f"{i}.{i}.{i}.{i}, 198.51.100.4"))
        public.check_rate(settings)
    LocalContext.request.set(_request("10.0.0.6", "s9", "9.9.9.9, 198.51.100.4"))
    with pytest.raises(gr.Error, match="2 predictions a minute"):
        public.check_rate(settings)


def test_a_logged_in_space_user_is_counted_by_name(tmp_path):
    settings = _public(tmp_path)
    oauth = SimpleNamespace(username="hf-user", client=SimpleNamespace(host="10.0.0.1"), headers={})
    assert public.caller_key(settings, oauth) == "user:hf-user"
    assert public.caller_key(settings, _request("10.0.0.1", "s")) == "ip:10.0.0.1"


def test_idle_callers_are_forgotten(monkeypatch):
    now = [0.0]
    limit = public.RateLimit(clock=lambda: now[0])
    monkeypatch.setattr(public, "MAX_TRACKED", 100)
    for i in range(100):
        limit.take(f"ip:{i}", 5)
    now[0] = 61.0
    limit.take("ip:new", 5)
    assert len(limit._calls) == 1


def test_only_public_mode_queue_is_bounded(tmp_path):
    assert public.queue_options(_public(tmp_path, public_queue=7)) == {"default_concurrency_limit": 2, "max_size": 7}
    assert "max_size" not in public.queue_options(Settings(runs_dir=tmp_path / "r", data_dir=tmp_path / "d"))


# --- pixels per request ------------------------------------------------------------------------------------
def _ctx(settings):
    return SimpleNamespace(settings=settings)


def test_a_small_file_of_many_pixels_is_refused_from_its_header_in_public_mode(tmp_path, monkeypatch):
    """A PNG of one colour compresses 36 Mpx into a few dozen KB: the budget counts pixels, not bytes, and the
    refusal comes from the header (nothing is decoded)."""

    bomb = tmp_path / "bomb.png"
    Image.new("RGB", (6000, 6000), (230, 180, 200)).save(bomb)
    assert bomb.stat().st_size < 200_000
    settings = _public(tmp_path)
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda im: decoded.append(im.size) or real_load(im))
    (item,) = uploads.read_uploads(_ctx(settings), [str(bomb)], None)
    assert item.image is None and decoded == []
    assert "36,000,000 pixels" in item.error and "8,000,000 pixels per request" in item.error
    # Outside public mode the 40 Mpx cap alone applies (a lab may look at large images).
    lab = Settings(runs_dir=tmp_path / "r", data_dir=tmp_path / "d")
    monkeypatch.setattr(Image.Image, "load", real_load)
    (item,) = uploads.read_uploads(_ctx(lab), [str(bomb)], None)
    assert item.image is not None and item.image.size == (6000, 6000)


def test_the_budget_is_shared_by_a_requests_images_and_a_jpeg_is_decoded_smaller(tmp_path):

    png = tmp_path / "a.png"
    Image.new("RGB", (2000, 1500), (200, 120, 170)).save(png)  # 3 Mpx
    jpg = tmp_path / "b.jpg"
    Image.new("RGB", (2000, 1500), (200, 120, 170)).save(jpg, quality=90)
    settings = _public(tmp_path, public_pixels=4_000_000)
    a, b, c = uploads.read_uploads(_ctx(settings), [str(png), str(jpg), str(png)], None)
    assert a.image.size == (2000, 1500)
    # 1 Mpx left: the JPEG decodes at 1/2 scale (0.75 Mpx) instead of being refused.
    assert b.image.size == (1000, 750) and not b.error
    assert c.image is None and "per request" in c.error  # 0.25 Mpx left: a PNG cannot be decoded smaller
    # Each request has its own budget.
    (again,) = uploads.read_uploads(_ctx(settings), [str(png)], None)
    assert again.image is not None


# --- files written for visitors expire ---------------------------------------------------------------------
def test_public_uploads_leave_no_copy_and_downloads_expire(tmp_path):
    from histoapp.ui.tabs import dashboard, predict

    settings = _public(tmp_path, public_upload_ttl_s=60)
    patch = tmp_path / "p.png"
    Image.new("RGB", (64, 64), (200, 120, 170)).save(patch)
    (item,) = uploads.read_uploads(_ctx(settings), [str(patch)], None)
    assert item.image is not None and item.path is None
    assert not (settings.data_dir / "uploads").exists()
    # A lab keeps the copy: the annotation queue refers to it.
    lab = Settings(runs_dir=tmp_path / "r", data_dir=tmp_path / "d")
    (kept,) = uploads.read_uploads(_ctx(lab), [str(patch)], None)
    assert kept.path and os.path.exists(kept.path)

    html = dashboard.export_html(_ctx(settings), ["results/idc/cnn/"], "accuracy", None, None, None)
    csv_path = predict_view.write_csv(_ctx(settings), predict.Session(items=[item]))
    for path in (html, csv_path):
        assert os.path.exists(path)
    assert visitor_files.sweep(settings) == 0  # young files stay
    old = time.time() - 61
    for path in (html, csv_path):
        os.utime(path, (old, old))
        os.utime(os.path.dirname(path), (old, old))
    assert visitor_files.sweep(settings) == 2
    assert not os.path.exists(html) and not os.path.exists(csv_path)
    assert list((settings.runs_dir / visitor_files.DOWNLOADS).iterdir()) == []  # the CSV's folder went too
    # Outside public mode downloads are kept a day.
    assert visitor_files.ttl_s(lab) == visitor_files.PRIVATE_TTL_S
    assert visitor_files.cache_policy(settings) == (30, 60)


def test_every_predict_handler_that_runs_the_models_counts_against_the_rate(tmp_path):
    """Direct calls to the tab's other model-running events (by fn_index) draw from the same budget."""
    from histoapp.ui.tabs import predict

    settings = _public(tmp_path, public_predictions_per_min=3)
    ctx = _ctx(settings)
    LocalContext.request.set(_request("203.0.113.7", "s"))
    predict.re_explain(ctx, predict.Session(), "Grad-CAM", predict.PREDICTED_CLASS, 0.5)
    predict.show_item(ctx, predict.Session(), "x.png", "Grad-CAM", predict.PREDICTED_CLASS, 0.5)
    predict.toggle_tta(ctx, predict.Session(), True, "Grad-CAM", predict.PREDICTED_CLASS, 0.5)
    for handler in (predict.re_explain, predict.show_item):
        with pytest.raises(gr.Error, match="3 predictions a minute"):
            args = ("x.png",) if handler is predict.show_item else ()
            handler(ctx, predict.Session(), *args, "Grad-CAM", predict.PREDICTED_CLASS, 0.5)

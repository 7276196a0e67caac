"""The Slide tab's HTTP routes on Gradio's FastAPI app: the zoomable viewer's Deep Zoom tiles, read one by one
from the slide as the viewer asks for them (never the whole slide rendered), the heat-map layers over it, and
the vendored OpenSeadragon (``assets/vendor/openseadragon``).

Every route applies the app's role check (``histoapp.auth``: the Slide tab's role, from Gradio's login cookie or
the Hugging Face session, as a handler's), and a slide is named by the random id ``ctx.slides`` gave it, never
by a path; an id that is malformed, unknown or another user's is the same 404."""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path
from types import SimpleNamespace

from fastapi import HTTPException, Request  # at module level: FastAPI reads the handlers' annotations here
from fastapi.responses import FileResponse, Response

from histoapp import auth
from histoapp.ui.slide_view import LAYER_SIDE, PREFIX, heat_rgba

ROLE = "annotator"  # the Slide tab's role (auth.TABS_FOR_ROLE)
VENDOR = Path(__file__).resolve().parents[2] / "assets" / "vendor" / "openseadragon"
_STATIC = re.compile(r"^(openseadragon\.min\.js|images/[A-Za-z0-9_-]+\.png)$")
_TILE = re.compile(r"^(\d{1,3})_(\d{1,7})\.(jpeg|png)$")
LAYERS = ("cnn", "vlm", "disagree")
TILE_FORMAT = "jpeg"
CACHE = {"Cache-Control": "private, max-age=3600"}


def requester(app, request) -> SimpleNamespace:
    """What ``histoapp.auth`` reads of a ``gr.Request``, for a plain HTTP request to Gradio's app: the user of
    Gradio's login cookie (``app.tokens``), and the Hugging Face OAuth session when the app has one."""
    cookie_id = getattr(app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
    tokens = getattr(app, "tokens", {}) or {}
    session = request.scope.get("session") if "session" in request.scope else None
    return SimpleNamespace(username=tokens.get(token) if token else None, session=session or {})


def allowed(settings, who) -> tuple[bool, str | None]:
    """(whether ``who`` has the Slide tab's role, their user name: the owner a slide is looked up under)."""
    return auth.at_least(auth.role_of(settings, who), ROLE), auth.user_of(who)


def install(app, ctx) -> None:
    """Add the routes to Gradio's FastAPI ``app`` (after ``launch`` made it; see ``attach``)."""

    def session_of(request: Request, slide_id: str):
        ok, user = allowed(ctx.settings, requester(app, request))
        if not ok:
            raise HTTPException(status_code=403, detail=f"the slide viewer needs the {ROLE} role")
        try:
            return ctx.slides.get(slide_id, user)
        except KeyError:
            raise HTTPException(status_code=404, detail="no such slide") from None

    def static(name: str, request: Request):
        ok, _ = allowed(ctx.settings, requester(app, request))
        if not ok:
            raise HTTPException(status_code=403, detail=f"the slide viewer needs the {ROLE} role")
        if not _STATIC.match(name) or not (VENDOR / name).is_file():
            raise HTTPException(status_code=404, detail="not found")
        return FileResponse(VENDOR / name, headers=CACHE)

    def dzi(slide_id: str, request: Request):
        session = session_of(request, slide_id)
        return Response(session.deepzoom().get_dzi(TILE_FORMAT), media_type="application/xml", headers=CACHE)

    def tile(slide_id: str, level: int, name: str, request: Request):
        session = session_of(request, slide_id)
        m = _TILE.match(name)
        zoom = session.deepzoom()
        if not m or not 0 <= level < zoom.level_count:
            raise HTTPException(status_code=404, detail="no such tile")
        col, row = int(m.group(1)), int(m.group(2))
        cols, rows = zoom.level_tiles[level]
        if col >= cols or row >= rows:
            raise HTTPException(status_code=404, detail="no such tile")
        image = zoom.get_tile(level, (col, row)).convert("RGB")
        buf = io.BytesIO()
        image.save(buf, "JPEG" if m.group(3) == "jpeg" else "PNG", quality=85)
        return Response(buf.getvalue(), media_type=f"image/{m.group(3)}", headers=CACHE)

    def heat(slide_id: str, layer: str, request: Request):
        session = session_of(request, slide_id)
        if layer not in LAYERS:
            raise HTTPException(status_code=404, detail="no such layer")
        png = heat_layer_png(session, layer)
        if png is None:
            raise HTTPException(status_code=404, detail="that model has not scored this slide")
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    base = f"/{PREFIX}"
    app.add_api_route(f"{base}/static/{{name:path}}", static, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{base}/{{slide_id}}/image.dzi", dzi, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        f"{base}/{{slide_id}}/image_files/{{level}}/{{name}}", tile, methods=["GET"], include_in_schema=False
    )
    app.add_api_route(f"{base}/{{slide_id}}/heat/{{layer}}.png", heat, methods=["GET"], include_in_schema=False)


def heat_layer_png(session, layer: str) -> bytes | None:
    """The viewer's overlay: one model's heat map (or the disagreement map) coloured, transparent on background,
    as PNG bytes; None when there is nothing to draw."""
    from histoapp.models.slides import disagreement

    w, h = session.slide.dimensions
    size = (max(1, round(w * LAYER_SIDE / max(w, h))), max(1, round(h * LAYER_SIDE / max(w, h))))
    if layer == "disagree":
        heat = disagreement(session, size)
    else:
        result = session.results.get(layer)
        heat = None if result is None else result.heatmap(size)
    if heat is None:
        return None
    buf = io.BytesIO()
    heat_rgba(heat, size).save(buf, "PNG")
    return buf.getvalue()


def attach(ctx) -> None:
    """Install the routes whenever the Blocks being built (``ctx.blocks``) is launched: Gradio makes its FastAPI
    app in ``launch``, so they are added to it there (before the caller's thread blocks, if it does)."""
    demo = ctx.blocks
    original = demo.launch

    @functools.wraps(original)
    def launch(*args, **kwargs):
        block = not kwargs.pop("prevent_thread_lock", False)
        try:
            out = original(*args, prevent_thread_lock=True, **kwargs)
        finally:  # histoapp.ui.app.launch goes on after Gradio's slow self-check (a ValueError): routes all the same
            if getattr(demo, "is_running", False):
                install(demo.server_app, ctx)
        if block:
            demo.block_thread()
        return out

    demo.launch = launch

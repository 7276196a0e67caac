"""Slide tab: a whole field or whole slide as a map of P(malignant), tiled at each model's scale and scored by
``trainer.slide`` (through ``histoapp.models.slides``): the heat map over the thumbnail, a zoomable viewer
(OpenSeadragon, tiles served lazily by ``histoapp.ui.slide_routes``), the tiles under a click with their
Grad-CAM / attention, the summary and the most suspicious tiles, CNN and VLM side by side and where they
disagree, the exports (CSV, PNG, GeoJSON) and the most uncertain tiles sent to the annotation queue.

Handlers are plain functions of (context, inputs), tested without a browser."""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr

from histoapp import visitor_files
from histoapp.auth import requires, user_of
from histoapp.models import slides
from histoapp.models.runner import model_choices
from histoapp.public import check_rate
from histoapp.settings import ASSETS
from histoapp.ui import slide_view as sv
from histoapp.ui.bind import bind
from histoapp.ui.context import AppContext
from histoapp.ui.queueing import QueuedPatch, send_patches
from trainer.data.records import MAGNIFICATIONS
from trainer.slide.reader import SLIDE_SUFFIXES

SLIDE_EXAMPLES = ASSETS / "examples" / "slides"
SERVER_SLIDES_LISTED = 500
NO_MAG = "from the slide"
SIDES = (("cnn", "CNN"), ("vlm", "VLM"))
TOP_K = 12
UNCERTAIN_K = 8
INTRO = (
    "### Slide view\nUpload a microscope field or a whole slide (PNG, JPEG, TIFF, pyramidal TIFF, SVS, NDPI, ...) or "
    "pick an example. Each model scores every tissue tile at the scale it was trained at (the slide's scale comes "
    "from its metadata, or from the magnification / µm per pixel given here). **Research and teaching tool — not a "
    "diagnostic device.**"
)


def examples(settings=None) -> list[tuple[str, str]]:
    """(label, path) of the slides the tab opens in place: the bundled examples, then the slides under the server's
    slide folder (``HISTOAPP_SLIDES``; at most ``SERVER_SLIDES_LISTED``, by name). The page offers the labels
    only: no server path reaches a browser."""
    found = [(p.name, str(p)) for p in sorted(SLIDE_EXAMPLES.glob("*")) if p.suffix.lower() in SLIDE_SUFFIXES]
    root = getattr(settings, "slide_dir", None)
    if root and Path(root).is_dir():
        root = Path(root).resolve()
        server = sorted(
            p for p in root.rglob("*") if p.suffix.lower() in SLIDE_SUFFIXES and p.is_file() and _visible(p, root)
        )
        found += [(f"server: {p.relative_to(root)}", str(p)) for p in server[:SERVER_SLIDES_LISTED]]
    return found


def _visible(path: Path, root: Path) -> bool:
    """Not hidden (no part of the path under the resolved folder ``root`` starts with a dot) and inside it once
    resolved (a link out of it is not listed)."""
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return not hidden and path.resolve().is_relative_to(root)


def _owner(ctx: AppContext) -> str | None:
    from histoapp.auth import current_request

    return user_of(current_request())


def _session(ctx: AppContext, view: sv.SlideView):
    if not view or not view.slide_id:
        return None
    try:
        return ctx.slides.get(view.slide_id, _owner(ctx))
    except KeyError:
        return None


# --- handlers ----------------------------------------------------------------------------------------


@requires("annotator")
def analyze(
    ctx: AppContext,
    upload,
    example,
    magnification,
    mpp,
    cnn_key,
    vlm_key,
    context,
    opacity,
    progress=gr.Progress(),  # noqa: B008 - Gradio's own idiom: it fills this in per call
) -> dict:
    """Open the upload (or the example) and score it with each chosen model; every bad input is one line."""
    view = sv.SlideView()
    path = upload if isinstance(upload, str) else getattr(upload, "name", None)
    if not (path or example):
        return render(ctx, view, opacity, ["upload a slide or pick an example"])
    try:
        check_rate(ctx.settings)
    except gr.Error as exc:
        return render(ctx, view, opacity, [exc.message])
    mag = None if magnification in (None, "", NO_MAG) else magnification
    where = dict(slides_dir=Path(ctx.settings.data_dir) / "slides", owner=_owner(ctx))
    try:
        if path:  # an upload: the app's own copy
            session = slides.open_upload(path, **where, mpp=float(mpp or 0) or None, magnification=mag)
        elif example in (listed := dict(examples(ctx.settings))):  # a listed slide, by label: read where it lies
            session = slides.open_in_place(listed[example], **where, mpp=float(mpp or 0) or None, magnification=mag)
        else:  # a value the list never offered (a forged request): no path of the server is opened
            raise slides.SlideRefused("that slide is not in the list: pick one of the listed slides")
    except (slides.SlideRefused, ValueError) as exc:
        return render(ctx, view, opacity, [str(exc)])
    ctx.slides.add(session)
    view.slide_id, view.name = session.id, session.name
    errors = list(session.slide.notes)
    keys = {"cnn": cnn_key, "vlm": vlm_key}
    if not (cnn_key or vlm_key):
        errors.append("no model selected: pick a CNN and/or a VLM")
    for side, kind in SIDES:
        if not keys[side]:
            continue

        def tell(done, total, kind=kind):
            progress((done / total) if total else 1.0, desc=f"{kind}: {done} / {total} tiles")

        try:
            result = slides.score(ctx, session, side, keys[side], context=bool(context), progress=tell)
            errors += [f"{kind}: {n}" for n in result.notes if n not in session.slide.notes]
        except Exception as exc:  # a model failing must not take the page down: say what happened
            errors.append(f"{kind} scoring failed: {exc.__class__.__name__}: {exc}")
    return render(ctx, view, opacity, errors)


def render(ctx: AppContext, view: sv.SlideView, opacity, errors: list[str] | None = None) -> dict:
    """Every output of the tab from the opened slide and its results."""
    session = _session(ctx, view)
    out = {
        "errors": "\n".join(f"⚠️ {e}" for e in errors or []),
        "cnn_map": None,
        "vlm_map": None,
        "diff_map": None,
        "summary": "",
        "top": [],
        "viewer": "",
        "view": view,
    }
    if session is None:
        return out
    thumb = session.thumbnail(sv.THUMB_SIDE)
    view.thumb_scale = thumb.width / session.slide.dimensions[0]
    for side, _ in SIDES:
        result = session.results.get(side)
        if result is not None:
            heat = result.heatmap(thumb.size)
            out[f"{side}_map"] = sv.heat_overlay(thumb, heat, float(opacity), result, view.thumb_scale)
    out["diff_map"] = sv.disagreement_image(thumb, slides.disagreement(session, thumb.size), float(opacity))
    out["summary"] = sv.summary_md(session.name, session.results)
    out["top"] = [
        (sv.explained_tile(slides.tile_image(session, t), None, 0), sv.caption(side, t))
        for side, _ in SIDES
        if side in session.results
        for t in session.results[side].top_k(TOP_K)
    ]
    out["viewer"] = sv.viewer_value(session.id, list(session.results), float(opacity))
    return out


def reblend(ctx: AppContext, view: sv.SlideView, opacity, layer=None) -> dict:
    """The opacity slider: the maps again (no model runs) and the viewer's layer."""
    out = render(ctx, view, opacity)
    return {k: out[k] for k in ("cnn_map", "vlm_map", "diff_map")} | show_layer(ctx, view, layer, opacity)


def show_layer(ctx: AppContext, view: sv.SlideView, layer, opacity) -> dict:
    """The viewer's heat layer: one model's map, or where the two disagree (when both ran)."""
    session = _session(ctx, view)
    if session is None:
        return {"viewer": ""}
    have = list(session.results) + (["disagree"] if all(s in session.results for s, _ in SIDES) else [])
    return {"viewer": sv.viewer_value(session.id, [layer if layer in have else have[0]] if have else [], opacity)}


@requires("annotator")
def tiles_at(ctx: AppContext, view: sv.SlideView, side, x: float, y: float, opacity) -> dict:
    """The tiles nearest a level-0 point, each with its model's Grad-CAM / attention (one batch)."""
    check_rate(ctx.settings)
    session = _session(ctx, view)
    if session is None or side not in session.results:
        return {"region": [], "region_note": "⚠️ Score a slide with that model first."}
    tiles = slides.tiles_near(session.results[side], x, y)
    if not tiles:
        return {"region": [], "region_note": "No tissue tile there: every tile of this slide is background."}
    try:
        preds = slides.explain_tiles(ctx, session, side, tiles)
    except Exception as exc:
        return {"region": [], "region_note": f"⚠️ Explanation failed: {exc.__class__.__name__}: {exc}"}
    shown = [
        (sv.explained_tile(slides.tile_image(session, t), p, float(opacity)), sv.caption(side, t, p))
        for t, p in zip(tiles, preds, strict=True)
    ]
    note = f"{len(tiles)} {dict(SIDES)[side]} tiles nearest x={int(x)}, y={int(y)} (level-0 px), with their maps."
    return {"region": shown, "region_note": note}


def click_map(ctx: AppContext, view: sv.SlideView, side, opacity, evt: gr.SelectData) -> dict:
    """A click on a heat map (thumbnail px) -> the tiles there."""
    x, y = evt.index[0], evt.index[1]
    scale = view.thumb_scale or 1.0
    return tiles_at(ctx, view, side, x / scale, y / scale, opacity)


def click_viewer(ctx: AppContext, view: sv.SlideView, side, text, opacity) -> dict:
    """A click in the viewer: its level-0 "x,y,click id" (set by the viewer's script) -> the tiles there."""
    m = re.fullmatch(r"\s*(-?\d+)\s*,\s*(-?\d+)\s*(?:,\s*\d+\s*)?", text or "")
    if not m:
        return {}
    return tiles_at(ctx, view, side, float(m.group(1)), float(m.group(2)), opacity)


@requires("annotator")
def export(ctx: AppContext, view: sv.SlideView, side) -> dict:
    """The tile CSV, heat-map PNG and GeoJSON of one model's result (``trainer.slide``'s writers)."""
    session = _session(ctx, view)
    if session is None or side not in session.results:
        return {"files": None, "send_status": "⚠️ Score a slide with that model first."}
    import tempfile

    out = Path(tempfile.mkdtemp(dir=visitor_files.downloads_dir(ctx.settings)))
    paths = slides.exports(session, side, out, session.thumbnail(sv.THUMB_SIDE))
    return {"files": [str(p) for p in paths], "send_status": ""}


@requires("annotator")
def send_uncertain(ctx: AppContext, view: sv.SlideView, side) -> str:
    """The most uncertain tiles (P nearest 0.5) as images in the annotation queue, with the model's answer."""
    session = _session(ctx, view)
    if session is None or side not in session.results:
        return "⚠️ Score a slide with that model first."
    kept = slides.queue_dir(ctx.settings.data_dir, session)
    done = slides.uncertain_patches(session, side, UNCERTAIN_K, kept)
    if not done:
        return "Nothing to send: no tissue tile was scored."
    key = session.keys[side]
    patches = [
        QueuedPatch(
            p.name,
            str(p),
            None,
            [(side, key, float(t.prob_malignant), "malignant" if t.prob_malignant >= 0.5 else "benign")],
        )
        for p, t in done
    ]
    return send_patches(ctx, patches, kept, dataset="slides")


def score_for_api(ctx: AppContext, path: str, cnn, vlm, magnification=None, mpp=None, context=False) -> dict:
    """The API's slide scoring (``histoapp.ui.api``: ``score_slide``): each model's summary, its most suspicious
    and most uncertain tiles, as JSON; a bad slide is a ``gr.Error`` with its reason."""
    import json

    check_rate(ctx.settings)
    try:
        session = slides.open_upload(
            path, Path(ctx.settings.data_dir) / "slides", _owner(ctx), mpp=mpp, magnification=magnification
        )
    except (slides.SlideRefused, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    ctx.slides.add(session)
    out = {"slide": session.name, "width": session.slide.dimensions[0], "height": session.slide.dimensions[1]}
    out |= {"mpp": session.slide.mpp, "notes": list(session.slide.notes)}
    for side, key in (("cnn", cnn), ("vlm", vlm)):
        if key:
            result = slides.score(ctx, session, side, key, context=bool(context))
            out[side] = {
                "model": key,
                "summary": result.summary,
                "notes": result.notes,
                "top": [t.to_dict() for t in result.top_k(TOP_K)],
                "uncertain": [t.to_dict() for t in result.uncertain(UNCERTAIN_K)],
            }
    return json.loads(json.dumps(out, default=float))


# --- layout ------------------------------------------------------------------------------------------


def build(ctx: AppContext) -> None:
    from histoapp.ui.slide_routes import attach

    attach(ctx)
    gr.Markdown(INTRO)
    try:
        cnn_choices, cnn_default = model_choices(ctx, "cnn")
        vlm_choices, _ = model_choices(ctx, "vlm")
    except Exception:  # a broken runs folder must not take the tab down
        cnn_choices, cnn_default, vlm_choices = [], None, []
    view = gr.State(sv.SlideView(), time_to_live=ctx.settings.session_ttl_s)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            upload = gr.File(label="Field or slide", file_count="single", type="filepath", elem_id="slide-file")
            example = gr.Dropdown(
                [("(none)", "")] + [(label, label) for label, _ in examples(ctx.settings)],
                value="",
                label="…or an example / a slide of the server's folder",
                elem_id="slide-example",
            )
            with gr.Row():
                mag = gr.Dropdown(
                    [NO_MAG, *MAGNIFICATIONS], value=NO_MAG, label="Magnification (when the slide has no scale)"
                )
                mpp = gr.Number(None, label="or µm per pixel", minimum=0, elem_id="slide-mpp")
        with gr.Column(scale=1, min_width=300):
            cnn_dd = gr.Dropdown(cnn_choices, value=cnn_default, label="CNN", elem_id="slide-cnn")
            vlm_dd = gr.Dropdown(vlm_choices, value=None, label="VLM (slower; none by default)", elem_id="slide-vlm")
            context = gr.Checkbox(False, label="Slide context: each tile's P(malignant) as its 3x3 mean")
            opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Heat-map opacity", elem_id="slide-opacity")
            run = gr.Button("Score the slide", variant="primary", elem_id="slide-run")
    errors = gr.Markdown(elem_id="slide-errors")
    summary = gr.Markdown(elem_id="slide-summary")
    gr.Markdown(sv.LEGEND)
    with gr.Row(equal_height=False):
        cnn_map = gr.Image(label="CNN: P(malignant)", type="pil", interactive=False, elem_id="slide-cnn-map")
        vlm_map = gr.Image(label="VLM: P(malignant)", type="pil", interactive=False, elem_id="slide-vlm-map")
        diff_map = gr.Image(label="Where they disagree: |CNN − VLM|", type="pil", interactive=False)
    gr.Markdown("#### Zoomable viewer (click a place to see its tiles)")
    layer = gr.Radio(
        [("CNN", "cnn"), ("VLM", "vlm"), ("Where they disagree", "disagree")], value="cnn", label="Viewer layer"
    )
    viewer = gr.HTML("", html_template=sv.VIEWER_TEMPLATE, js_on_load=sv.VIEWER_JS, elem_id="slide-viewer")
    # The viewer's script writes a click's level-0 "x,y" here; the box itself is never shown.
    clicked = gr.Textbox(elem_id="slide-click", container=False)
    gr.HTML("<style>#slide-click{display:none !important}</style>", container=False, padding=False)
    with gr.Row():
        side = gr.Radio([("CNN", "cnn"), ("VLM", "vlm")], value="cnn", label="Tiles and exports of", scale=1)
        region_note = gr.Markdown(elem_id="slide-region-note")
    region = gr.Gallery(label="Tiles there, with their maps", columns=6, height=260, elem_id="slide-region")
    top = gr.Gallery(label=f"The {TOP_K} most suspicious tiles", columns=6, height=260, elem_id="slide-top")
    with gr.Row():
        export_btn = gr.Button("Export CSV / heat-map PNG / GeoJSON", elem_id="slide-export")
        send = gr.Button(f"Send the {UNCERTAIN_K} most uncertain tiles to the annotation queue", elem_id="slide-send")
    send_status = gr.Markdown(elem_id="slide-send-status")
    files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="slide-files")

    outputs = {
        "errors": errors,
        "cnn_map": cnn_map,
        "vlm_map": vlm_map,
        "diff_map": diff_map,
        "summary": summary,
        "top": top,
        "viewer": viewer,
        "view": view,
    }
    region_out = {"region": region, "region_note": region_note}
    run.click(
        bind(analyze, ctx, outputs=outputs),
        [upload, example, mag, mpp, cnn_dd, vlm_dd, context, opacity],
        list(outputs.values()),
        concurrency_id="models",
    )
    reblend_out = {k: outputs[k] for k in ("cnn_map", "vlm_map", "diff_map", "viewer")}
    opacity.release(bind(reblend, ctx, outputs=reblend_out), [view, opacity, layer], list(reblend_out.values()))
    layer.input(bind(show_layer, ctx, outputs={"viewer": viewer}), [view, layer, opacity], [viewer])
    for image, which in ((cnn_map, "cnn"), (vlm_map, "vlm"), (diff_map, None)):
        handler = bind(click_map, ctx, outputs=region_out)
        inputs = [view, gr.State(which), opacity] if which else [view, side, opacity]
        image.select(handler, inputs, list(region_out.values()))
    clicked.change(
        bind(click_viewer, ctx, outputs=region_out), [view, side, clicked, opacity], list(region_out.values())
    )
    export_btn.click(
        bind(export, ctx, outputs={"files": files, "send_status": send_status}), [view, side], [files, send_status]
    )
    send.click(bind(send_uncertain, ctx), [view, side], [send_status])

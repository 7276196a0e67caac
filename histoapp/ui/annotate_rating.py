"""The Annotate tab's rating of an explanation map (issue 27): beside the label, the rater draws a model's map of
the patch on screen (the CNN's CAM methods, the VLM's attention), reads its faithfulness score (hidden in blind
mode: the rating must judge the map, not the number) and rates, 1-5, whether it highlights the diagnostic region,
with a free note. The rating is stored with the model, the method and the score of that very map
(``histoapp.store.ratings``: audit-logged, undone by the tab's Undo like a label, exported with the annotations).

``panel()`` lays it out inside the tab's right column; ``wire()`` connects it through the tab's ``viewing``
(each event gets the queue ``View`` with the controls' values, as the label buttons do)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import gradio as gr

from histoapp.auth import requires
from histoapp.store import StoreError
from histoapp.store.fields import MAP_RATINGS
from histoapp.ui.annotate_view import View, for_display, resolve_annotator
from histoapp.ui.context import AppContext
from histoapp.ui.shortcuts import SUBMISSION_ID_JS

VLM_CHOICE = ("VLM · label-token attention", "vlm|attention")
OPACITY = 0.45


@dataclass
class ShownMap:
    """The map on screen in the panel: whose, of which image, and its faithfulness score (None: not measured)."""

    image_id: int
    model: str
    model_name: str
    method: str
    faithfulness: float | None = None
    sentence: str = ""


def map_choices() -> list[tuple[str, str]]:
    from trainer.explain import CAM_METHODS

    return [(f"CNN · {m}", f"cnn|{m}") for m in CAM_METHODS] + [VLM_CHOICE]


def caption(shown: ShownMap | None, blind: bool) -> str:
    """What the panel says under the map; blind mode hides the score while rating."""
    if shown is None:
        return ""
    head = f"Map of image #{shown.image_id}: **{shown.model_name}** · {shown.method}."
    if blind:
        return head + " *Blind mode: the map's faithfulness score is hidden while you rate.*"
    if shown.faithfulness is None:
        return head + " Faithfulness: not measured."
    return head + f" **Faithfulness {shown.faithfulness:+.2f}** (ROAD): {shown.sentence}"


def _model_for(ctx: AppContext, image_id: int, family: str) -> str | None:
    """The ``family`` model whose prediction is stored for the image (Predict's Send), if the app still has it;
    else the app's default one."""
    for p in ctx.store.predictions(image_id):
        if p["kind"] == family:
            try:
                if ctx.registry.get(p["model"]).available:
                    return p["model"]
            except KeyError:
                continue
    return ctx.registry.default_key(family)


@requires("annotator")
def show_map(ctx: AppContext, choice: str, v: View, request: gr.Request) -> dict:
    """The chosen map of the patch on screen, with its faithfulness score (one model call, on demand)."""
    from histoapp.explain.overlay import overlay
    from histoapp.models.map_checks import map_with_score
    from histoapp.models.uploads import abstained

    nothing = {"map_img": None, "shown": None}
    if v.current is None:
        return nothing | {"map_info": "No image on screen."}
    family, method = (choice or "cnn|Grad-CAM").split("|", 1)
    key = _model_for(ctx, v.current, family)
    if not key:
        return nothing | {"map_info": f"⚠️ No {family.upper()} model is available to draw a map."}
    img, problem = ctx.store.load_image(v.current)
    if img is None:
        return nothing | {"map_info": f"⚠️ {problem}"}
    try:
        pred, f = map_with_score(ctx, key, family, img, method)
    except Exception as exc:  # a failing model must not take the tab down; say what happened
        return nothing | {"map_info": f"⚠️ The map failed: {exc.__class__.__name__}: {exc}"}
    if abstained(pred) or pred.explanation is None:
        return nothing | {"map_info": f"The model abstains on this patch ({pred.abstain_reason}): no map to rate."}
    shown = ShownMap(
        v.current,
        key,
        pred.model or key,
        method,
        None if f is None else float(f.road_combined),
        "" if f is None else f.sentence(),
    )
    picture = overlay(for_display(img), pred.explanation.heatmap, OPACITY)
    return {"map_img": picture, "shown": shown, "map_info": caption(shown, v.blind)}


@requires("annotator")
def save_rating(ctx: AppContext, rating, note, shown: ShownMap | None, key, v: View, request: gr.Request) -> dict:
    """Save the rater's rating of the map on screen (``key``: the click's submission id)."""
    if shown is None or shown.image_id != v.current:
        return {"rate_status": "⚠️ Not saved: show a map of the image on screen first (**Show map**)."}
    try:
        res = ctx.store.rate_map(
            shown.image_id,
            resolve_annotator(v.name, request),
            model=shown.model,
            method=shown.method,
            rating=rating,
            note=note or "",
            faithfulness=shown.faithfulness,
            submission_id=key or None,
        )
    except StoreError as exc:
        return {"rate_status": f"⚠️ Not saved: {exc}"}
    again = " (already saved)" if res["duplicate"] else ""
    return {
        "rate_status": f"Saved your rating **{res['rating']}/5** of the {shown.method} map of image #{shown.image_id}{again}."
    }


def recaption(ctx: AppContext, shown: ShownMap | None, v: View, request: gr.Request) -> dict:
    """Blind mode switched: the caption again (the score shown or hidden)."""
    return {"map_info": caption(shown, v.blind)}


def panel() -> SimpleNamespace:
    """The panel's components (inside the tab's right column, below the label buttons)."""
    p = SimpleNamespace()
    with gr.Accordion("Rate a model's map of this patch (optional)", open=False, elem_id="ann-rate"):
        with gr.Row():
            p.choice = gr.Dropdown(map_choices(), value="cnn|Grad-CAM", label="Map", scale=3, elem_id="ann-map-choice")
            p.show = gr.Button("Show map", size="sm", scale=1, elem_id="ann-map-show")
        image = gr.Image(label="Map", type="pil", interactive=False, height=320, elem_id="ann-map")
        info = gr.Markdown(elem_id="ann-map-info")
        p.rating = gr.Radio(
            [(f"{k}: {text}", k) for k, text in MAP_RATINGS.items()],
            label="Does the map highlight the diagnostic region?",
            elem_id="ann-map-rating",
        )
        p.note = gr.Textbox(label="Note on the map", lines=1, elem_id="ann-map-note")
        p.save = gr.Button("Save rating", size="sm", variant="primary", elem_id="ann-map-save")
        status = gr.Markdown(elem_id="ann-map-status")
    p.shown = gr.State(None)  # the ShownMap on screen
    p.outputs = {"map_img": image, "map_info": info, "shown": p.shown, "rate_status": status}
    return p


def wire(p: SimpleNamespace, viewing, controls: list, blind, sub_id) -> None:
    """Connect the panel: ``viewing(fn, *first)`` is the tab's queue-view binding (``annotate.bind_view``), whose
    outputs include ``p.outputs``; ``controls``: the view's inputs then its state; ``sub_id``: the hidden box
    SUBMISSION_ID_JS fills."""
    out = p.outputs
    p.show.click(viewing(show_map), [*controls, p.choice], [out["map_img"], out["map_info"], out["shown"]])
    p.save.click(
        viewing(save_rating, refusal="rate_status"),
        [*controls, p.rating, p.note, p.shown, sub_id],
        [out["rate_status"]],
        js=SUBMISSION_ID_JS,
        trigger_mode="once",
    )
    blind.change(viewing(recaption), [*controls, p.shown], [out["map_info"]], show_progress="hidden")

"""Predict & Explain tab: CNN and VLM predictions side by side with Grad-CAM / attention overlays, a batch
table with CSV download, and disagreements sent to the annotation queue. Every prediction carries its OOD score
and the abstention rule's verdict (``trainer.trust``): when a model abstains the tab shows the reason instead of
a label, dims the probability bars and shows no heat map.

The handlers below are plain functions of (context, inputs) so they can be tested without a browser; heavy
modules (torch, the models) are imported on first use so the app starts fast."""

from __future__ import annotations

import contextlib
from pathlib import Path

import gradio as gr

from histoapp.auth import requires
from histoapp.models.calls import model_concurrency, models_call
from histoapp.models.map_checks import check_maps
from histoapp.models.ops import PREDICTED_CLASS
from histoapp.models.runner import explain_cnn, explain_item, model_choices, predict_items
from histoapp.models.uploads import MAX_BATCH, UNKNOWN_MAG, magnification_tag, read_uploads, upload_paths
from histoapp.public import check_rate
from histoapp.ui.bind import bind
from histoapp.ui.context import AppContext
from histoapp.ui.predict_view import NO_MODEL, STYLE, VIEW_COLUMNS, Session, errors_md, faith_md, overlay_image, render
from histoapp.ui.queueing import QueuedPatch, send_patches
from trainer.data.records import MAGNIFICATIONS

MAGS = [UNKNOWN_MAG, *MAGNIFICATIONS]  # the magnification tag: none, or one of the records'
INTRO = (
    "### Predict & explain\nUpload one or more H&E patches (PNG, JPEG or TIFF) or pick an example. A CNN and a "
    "vision-language model classify each patch side by side; the CNN's Grad-CAM and the VLM's label-token attention "
    "show where they looked. The bundled demo models were trained by this project's trainer on real IDC "
    "breast-cancer patches (malignant = invasive ductal carcinoma in the patch), not on BreakHis. "
    "**Research and teaching tool — not a diagnostic device.**"
)


# --- handlers ----------------------------------------------------------------------------------------


def _keys(session: Session) -> dict[str, str]:
    return {"cnn": session.cnn_key, "vlm": session.vlm_key}


def _detail(ctx: AppContext, session: Session, method: str, target: str | None, errors: list[str]) -> None:
    """The shown patch in full (``histoapp.models.runner.explain_item``)."""
    item = session.items[session.current]
    explain_item(ctx, item, _keys(session), method, target, session.tta, errors)


def analyze(ctx: AppContext, files, magnification, cnn_key, vlm_key, method, target, opacity, tta=False):
    session = Session(cnn_key=cnn_key or NO_MODEL, vlm_key=vlm_key or NO_MODEL, tta=bool(tta))
    paths = upload_paths(files)
    errors: list[str] = []
    if not paths:
        return render(ctx, session, opacity)
    try:
        check_rate(ctx.settings)
    except gr.Error as exc:  # said in the errors line: a refusal leaves the page's other components working
        return render(ctx, session, opacity, [exc.message])
    if len(paths) > MAX_BATCH:
        errors.append(f"{len(paths)} files uploaded; only the first {MAX_BATCH} are used")
        paths = paths[:MAX_BATCH]
    try:
        mag = magnification_tag(magnification)
    except ValueError as exc:
        mag, _ = None, errors.append(str(exc))
    session.items = read_uploads(ctx, paths, mag)
    if not (cnn_key or vlm_key):
        errors.append("no model selected: pick a CNN and/or a VLM")
    readable = [it for it in session.items if it.image is not None]
    if readable and (cnn_key or vlm_key):
        predict_items(ctx, session.items, _keys(session), errors=errors)
        session.current = session.items.index(readable[0])
        _detail(ctx, session, method, target, errors)
    return render(ctx, session, opacity, errors)


def show_item(ctx: AppContext, session: Session, name, method, target, opacity):
    check_rate(ctx.settings)  # each of these handlers runs the models again: they count like a prediction
    errors: list[str] = []
    for i, it in enumerate(session.items):
        if it.name == name and it.image is not None:
            session.current = i
            _detail(ctx, session, method, target, errors)
            break
    return render(ctx, session, opacity, errors)


def re_explain(ctx: AppContext, session: Session, method, target, opacity):
    """A new CAM method or target class: the CNN side of the shown patch only."""
    check_rate(ctx.settings)
    errors: list[str] = []
    item = session.items[session.current] if session.items else None
    if item is not None:
        explain_cnn(ctx, item, session.cnn_key, method, target, errors)
    return render(ctx, session, opacity, errors)


def toggle_tta(ctx: AppContext, session: Session, tta, method, target, opacity):
    """The uncertainty checkbox: the shown patch with (or without) its 8 flips / rotations."""
    check_rate(ctx.settings)
    session.tta = bool(tta)
    errors: list[str] = []
    if session.items and 0 <= session.current < len(session.items):
        _detail(ctx, session, method, target, errors)
    return render(ctx, session, opacity, errors)


def check_shown_maps(ctx: AppContext, session: Session, method) -> dict:
    """Check the maps: the faithfulness of the shown patch's CNN and VLM maps, under each (kept on the item)."""
    check_rate(ctx.settings)
    item = session.items[session.current] if session.items else None
    errors: list[str] = [] if item else ["nothing to check: predict a patch first"]
    if item is not None:
        check_maps(ctx, item, _keys(session), method, errors)
    out = {"cnn_faith": faith_md(item, "cnn"), "vlm_faith": faith_md(item, "vlm")}
    return out | {"errors": errors_md(session, errors), "session": session}


def method_marks(ctx: AppContext, cnn_key: str | None) -> dict:
    """The method picker for CNN ``cnn_key``: a method that failed both checks in a committed explain-eval table
    of this model says so (``histoapp.analysis.explain_eval``); no table, or one that cannot be read: unmarked."""
    from histoapp.analysis.explain_eval import marked, verdicts_for
    from trainer.explain import CAM_METHODS

    names, folder = ({cnn_key} if cnn_key else set()), None
    with contextlib.suppress(KeyError):
        entry = ctx.registry.get(cnn_key)
        folder = entry.path
        # A demo model's folder names it (demo-cnn); a run's checkpoint folder is "best": its path says which.
        names |= {entry.name} | ({Path(folder).name} if entry.source == "demo" and folder else set())
    try:
        verdicts = verdicts_for(names, folder) if cnn_key else {}
    except Exception:  # a damaged table must not take the picker down
        verdicts = {}
    return gr.update(choices=marked(CAM_METHODS, verdicts))


def reblend(session: Session, opacity) -> dict:
    """The opacity slider: re-blend the kept heatmaps, no model runs."""
    item = session.items[session.current] if session.items else None
    return {
        "cnn_img": overlay_image(item, item.cnn, opacity) if item and item.cnn else None,
        "vlm_img": overlay_image(item, item.vlm, opacity) if item and item.vlm else None,
    }


@requires("annotator")
def send_to_annotation(ctx: AppContext, session: Session) -> str:
    """Queue every disagreeing patch (image + both predictions) in the annotation store."""
    todo = [it for it in session.items if it.disagree and it.path]
    if not todo:
        return "Nothing to send: the models agree on every patch."
    patches = [
        QueuedPatch(
            it.name,
            it.path,
            it.magnification,
            [
                (kind, key, float(pred.prob_malignant), pred.label)
                for kind, key, pred in (
                    ("cnn", it.key("cnn", session.cnn_key), it.cnn),
                    ("vlm", it.key("vlm", session.vlm_key), it.vlm),
                )
            ],
        )
        for it in todo
    ]
    return send_patches(ctx, patches, Path(ctx.settings.data_dir) / "uploads")


def models_status(ctx: AppContext) -> tuple:
    """The warm-up's line and whether to keep polling it (``histoapp.models.warm``)."""
    warmup = ctx.warmup
    return warmup.status(), gr.Timer(active=not warmup.over)


def unavailable_md(ctx: AppContext) -> str:
    """The models listed but not usable now, and why; not in public mode (a visitor can do nothing about the
    server's hub access)."""
    from histoapp.auth import mode

    if mode(ctx.settings) == "public":
        return ""
    off = [e for e in ctx.registry.list() if not e.available]
    return ("Not available now: " + "; ".join(f"`{e.name}`: {e.reason}" for e in off)) if off else ""


def target_choices(ctx: AppContext, cnn_key: str | None) -> dict:
    classes = ["benign", "malignant"]
    if cnn_key:
        with contextlib.suppress(Exception):  # an unloadable model keeps the binary choices
            classes = models_call(ctx, "classes", cnn_key)
    return gr.update(choices=[PREDICTED_CLASS] + list(classes), value=PREDICTED_CLASS)


def refresh_models(ctx: AppContext) -> tuple:
    """The model lists again (a run finished, a hub model came back) and what is still unavailable."""
    c, cd = model_choices(ctx, "cnn", auto=True)
    v, vd = model_choices(ctx, "vlm", auto=True)
    return gr.update(choices=c, value=cd), gr.update(choices=v, value=vd), unavailable_md(ctx)


# --- layout ------------------------------------------------------------------------------------------


def build(ctx: AppContext) -> None:
    from histoapp.ui.examples import DATASETS, list_examples
    from trainer.explain import DEFAULT_METHOD

    gr.Markdown(INTRO)
    try:
        cnn_choices, cnn_default = model_choices(ctx, "cnn", auto=True)
        vlm_choices, vlm_default = model_choices(ctx, "vlm", auto=True)
        note = unavailable_md(ctx)
    except Exception as exc:  # a broken runs folder must not take the tab down
        cnn_choices, cnn_default, vlm_choices, vlm_default = [], None, [], None
        note = f"⚠️ Model list failed: {exc}"
    session = gr.State(Session(), time_to_live=ctx.settings.session_ttl_s)  # it holds the decoded patches
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            files = gr.File(
                label="Patches (PNG / JPEG / TIFF) — one or many",
                file_count="multiple",
                # No file_types: Gradio's own type check leaves the box in a red error state; read_upload
                # refuses other types with a one-line reason instead, and the box stays usable.
                elem_id="predict-files",
            )
            mag = gr.Dropdown(MAGS, value=UNKNOWN_MAG, label="Magnification (optional tag)", elem_id="predict-mag")
            examples = list_examples()
            for dataset, heading in DATASETS.items():  # one group per dataset, under its heading
                group = [e for e in examples if e["dataset"] == dataset]
                if group:
                    gr.Examples(
                        # The File box takes several files: an example's value is a list of one (a bare path
                        # fails Gradio's ListFiles check and every output shows "Error").
                        [[[e["path"]], e["magnification"]] for e in group],
                        inputs=[files, mag],
                        cache_examples=False,
                        example_labels=[e["title"] for e in group],
                        examples_per_page=16,
                        label=heading,
                    )
            gr.Markdown("Sources and licences of the examples: `assets/examples/README.md`.")
        with gr.Column(scale=1, min_width=300):
            cnn_dd = gr.Dropdown(cnn_choices, value=cnn_default, label="CNN", elem_id="predict-cnn")
            vlm_dd = gr.Dropdown(vlm_choices, value=vlm_default, label="VLM", elem_id="predict-vlm")
            method = gr.Radio(
                method_marks(ctx, cnn_default)["choices"],
                value=DEFAULT_METHOD,
                label="CNN explanation (grad-cam)",
                # What each costs beside a plain prediction, demo CNN on a 2-core CPU (bench/README.md, issue 30).
                info="Cost per patch vs a plain prediction (demo CNN): Grad-CAM, Grad-CAM++, Eigen-CAM ~1.1x; "
                "Score-CAM ~120x (one pass per feature channel, 512 here: about a second on a CPU)",
            )
            target = gr.Dropdown([PREDICTED_CLASS, "benign", "malignant"], value=PREDICTED_CLASS, label="Explain class")
            opacity = gr.Slider(0.0, 1.0, value=0.45, step=0.05, label="Overlay opacity", elem_id="predict-opacity")
            tta = gr.Checkbox(
                value=False,
                label="Uncertainty: test-time augmentation",
                info="P(malignant) over the 8 flips / 90-degree rotations of the shown patch: one more batch of 8",
                elem_id="predict-tta",
            )
            with gr.Row():
                run = gr.Button("Predict", variant="primary", elem_id="predict-run")
                refresh = gr.Button("Refresh model list", size="sm")
            models_note = gr.Markdown(note)
            if getattr(ctx, "warm", False):  # launch() loads the default models in the background: say when ready
                status = gr.Markdown(ctx.warmup.status(), elem_id="predict-models-status")
                poll = gr.Timer(1.0)
                poll.tick(bind(models_status, ctx), None, [status, poll], queue=False, show_progress="hidden")
                ctx.blocks.load(bind(models_status, ctx), None, [status, poll], queue=False, show_progress="hidden")
    errors = gr.Markdown(elem_id="predict-errors")
    gr.HTML(STYLE, container=False, padding=False)  # dims an abstaining model's probability bars
    with gr.Row(equal_height=False):
        with gr.Column(elem_id="predict-cnn-result"):
            cnn_title = gr.Markdown("#### CNN", elem_id="predict-cnn-title")
            cnn_label = gr.Label(num_top_classes=3, label="CNN prediction", elem_id="predict-cnn-label")
            cnn_info = gr.Markdown(elem_id="predict-cnn-info")
            cnn_img = gr.Image(
                label="CNN explanation (CAM overlay)", type="pil", interactive=False, elem_id="predict-cnn-overlay"
            )
            cnn_faith = gr.Markdown(elem_id="predict-cnn-faith")
        with gr.Column(elem_id="predict-vlm-result"):
            vlm_title = gr.Markdown("#### VLM")
            vlm_label = gr.Label(num_top_classes=3, label="VLM prediction", elem_id="predict-vlm-label")
            vlm_info = gr.Markdown(elem_id="predict-vlm-info")
            vlm_img = gr.Image(
                label="VLM explanation (attention overlay)",
                type="pil",
                interactive=False,
                elem_id="predict-vlm-overlay",
            )
            vlm_faith = gr.Markdown(elem_id="predict-vlm-faith")
            vlm_answer = gr.Textbox(label="VLM answer (free text)", interactive=False, elem_id="predict-vlm-answer")
    check = gr.Button("Check the maps (faithfulness)", size="sm", elem_id="predict-check-maps")
    agreement = gr.Markdown(elem_id="predict-agreement")
    with gr.Row():
        send = gr.Button("Send to annotation queue", visible=False, elem_id="predict-send")
        send_status = gr.Markdown(elem_id="predict-send-status")
    pick = gr.Dropdown([], label="Show details for", visible=False, elem_id="predict-pick")
    table = gr.Dataframe(
        headers=VIEW_COLUMNS,
        label="Batch results (the CSV below adds the OOD scores and the full reasons)",
        visible=False,
        interactive=False,
        wrap=True,
        column_widths=["27%", "6%", "10%", "9%", "10%", "9%", "6%", "23%"],
        max_height=800,
        elem_id="predict-table",
    )
    csv_out = gr.File(label="Download results (CSV)", visible=False, elem_id="predict-csv")

    outputs = {
        "errors": errors,
        "cnn_title": cnn_title,
        "cnn_label": cnn_label,
        "cnn_info": cnn_info,
        "cnn_img": cnn_img,
        "vlm_title": vlm_title,
        "vlm_label": vlm_label,
        "vlm_info": vlm_info,
        "vlm_img": vlm_img,
        "vlm_answer": vlm_answer,
        "cnn_faith": cnn_faith,
        "vlm_faith": vlm_faith,
        "agreement": agreement,
        "send": send,
        "send_status": send_status,
        "table": table,
        "csv": csv_out,
        "pick": pick,
        "session": session,
    }
    common = dict(
        outputs=list(outputs.values()), concurrency_limit=model_concurrency(ctx.settings), concurrency_id="models"
    )
    run_inputs = [files, mag, cnn_dd, vlm_dd, method, target, opacity, tta]
    run.click(bind(analyze, ctx, outputs=outputs), run_inputs, **common)
    files.change(bind(analyze, ctx, outputs=outputs), run_inputs, **common)
    pick.input(bind(show_item, ctx, outputs=outputs), [session, pick, method, target, opacity], **common)
    method.change(bind(re_explain, ctx, outputs=outputs), [session, method, target, opacity], **common)
    target.input(bind(re_explain, ctx, outputs=outputs), [session, method, target, opacity], **common)
    opacity.release(bind(reblend, outputs=outputs), [session, opacity], [cnn_img, vlm_img])
    tta.input(bind(toggle_tta, ctx, outputs=outputs), [session, tta, method, target, opacity], **common)
    cnn_dd.input(bind(target_choices, ctx), [cnn_dd], [target])
    cnn_dd.input(bind(method_marks, ctx), [cnn_dd], [method])
    check_outputs = [outputs[k] for k in ("cnn_faith", "vlm_faith", "errors", "session")]
    check.click(
        bind(check_shown_maps, ctx, outputs=outputs), [session, method], **(common | {"outputs": check_outputs})
    )
    send.click(bind(send_to_annotation, ctx), [session], [send_status])
    refresh.click(bind(refresh_models, ctx), None, [cnn_dd, vlm_dd, models_note])

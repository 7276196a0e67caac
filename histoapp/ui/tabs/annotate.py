"""Annotate tab: a pathologist's review-and-label queue on the annotation database (``histoapp.store``).

Every click goes straight to the database (one transaction, audit-logged, with a browser-made submission id so
a retried click applies once); nothing lives only in the page, so a reload loses nothing.

The handlers are plain functions of ``ctx`` (bound with ``histoapp.ui.bind.bind``), so tests call them without a
browser; ``build`` lays the tab out and wires them."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import gradio as gr

from histoapp.auth import at_least, current_request, requires, role_of, user_of
from histoapp.auth import mode as auth_mode
from histoapp.store import StoreError
from histoapp.store.modes import BLIND_HIDES, MODES
from histoapp.ui import annotate_rating
from histoapp.ui import annotate_view as view
from histoapp.ui.annotate_view import ANY, CONTROLS, View
from histoapp.ui.bind import bind, refusal_as_message
from histoapp.ui.context import AppContext
from histoapp.ui.shortcuts import HELP, JS, REMEMBER_NAME_JS, RESTORE_NAME_JS, SUBMISSION_ID_JS
from trainer.data.records import MAGNIFICATIONS, SUBTYPE_LABEL, SUBTYPE_NAMES, SUBTYPES

VIEW_OUTPUTS = ("view", "viewer", "info", "progress", "status", "recent")  # what render() returns


# --- handlers: the queue view ----------------------------------------------------------------------------
def render(ctx: AppContext, v: View, name: str, image_id: int | None, message: str = "", center=None) -> dict:
    """Everything the view shows (``VIEW_OUTPUTS``), for ``image_id`` (None: the queue is empty)."""
    store = ctx.store
    m, d = v.filters
    prog = view.progress_text(store.progress(name or None, magnification=m, dataset=d), name)
    v.current = image_id
    out = {"view": v, "progress": prog, "status": message, "recent": view.recent_table(store, name)}
    if image_id is None:
        return out | {"viewer": None, "info": "*Nothing left in this queue with these filters.*"}
    img, text = view.viewer_content(store, image_id, name, blind=v.blind, zoom=v.zoom, center=center)
    return out | {"viewer": img, "info": text}


def next_id(ctx: AppContext, name, v: View, exclude=()):
    m, d = v.filters
    ids = ctx.store.queue(
        name or None, mode=v.mode, magnification=m, dataset=d, exclude=[*v.skipped, *exclude], limit=1
    )
    return ids[0] if ids else None


def on_load(ctx: AppContext, v: View, request: gr.Request) -> dict:
    """Page load: the annotator name the browser remembered (a logged-in user's own, read-only: labels carry the
    login whatever the box says), the datasets, the Import panel for researchers only, the first image (nothing
    for a user who may not annotate: the tab is hidden from them, and the page load must not fail)."""
    role = role_of(ctx.settings, request)
    importer = {"import_box": gr.update(visible=at_least(role, "researcher"))}
    if not at_least(role, "annotator"):
        return importer
    name = view.resolve_annotator(v.name, request)
    v.zoom = 1
    out = render(ctx, v, name, next_id(ctx, name, v), "" if name else "Enter your name to start labelling.")
    # An empty saved name must not wipe a name typed while the page was loading.
    box = gr.update(value=name, interactive=False) if user_of(request) else (name if name else gr.update())
    return out | importer | {"annotator": box, "dataset": gr.update(choices=[ANY, *ctx.store.datasets()])}


@requires("annotator")
def show_next(ctx: AppContext, v: View, request: gr.Request, exclude_current=True, message="") -> dict:
    name = view.resolve_annotator(v.name, request)
    cur = v.current
    nid = next_id(ctx, name, v, (cur,) if (exclude_current and cur is not None) else ())
    if nid is None and cur is not None and exclude_current:
        nid = next_id(ctx, name, v)  # only the current one left
    return render(ctx, v, name, nid, message)


@requires("annotator")
def refilter(ctx: AppContext, v: View, request: gr.Request) -> dict:
    """A changed queue, filter or name: the first image that now fits (the current one if it still does)."""
    return show_next(ctx, v, request, exclude_current=False)


@requires("annotator")
def rename(ctx: AppContext, v: View, request: gr.Request) -> dict:
    """The annotator box left or submitted: the queue of the name now in it.

    Leaving the box is usually a click on a label (or skip, next, undo) button, whose own reply already shows
    the view for the box's name; this refresh runs next to that click, and a reply landing after the click's
    would wipe its "Saved image" message and could put the image just labelled back on screen. So: for a
    logged-in user, whose labels carry the login whatever the box says, nothing changes and nothing is sent
    back; otherwise the status is left alone, and in open mode the view's events run one at a time (``build``),
    so this refresh sees the click's result or the click sees its."""
    if user_of(request):
        return {}
    out = refilter(ctx, v, request)
    return {k: o for k, o in out.items() if k != "status"}


@requires("annotator")
def save_label(
    ctx: AppContext, label, subtype, auto_v, conf, flag_v, note_v, key, v: View, request: gr.Request
) -> dict:
    """A label button (``label`` benign/malignant, or a ``subtype``): saved at once, then the next image."""
    name = view.resolve_annotator(v.name, request)
    cur = v.current
    if cur is None:
        return render(ctx, v, name, None, "No image on screen.")
    try:
        res = ctx.store.annotate(
            cur,
            name,
            label=label,
            subtype=subtype,
            confidence=conf,
            note=note_v or "",
            submission_id=key or None,
            **{k: (k in (flag_v or [])) for _, k in view.FLAG_CHOICES},
        )
    except StoreError as exc:
        return render(ctx, v, name, cur, f"⚠️ Not saved: {exc}")
    text = view.label_text(res["label"], res["subtype"])
    msg = f"Saved image #{cur}: **{text}**" + (" (already saved)" if res["duplicate"] else "")
    return render(ctx, v, name, next_id(ctx, name, v, (cur,)) if auto_v else cur, msg)


@requires("annotator")
def skip_image(ctx: AppContext, v: View, request: gr.Request) -> dict:
    cur = v.current
    if cur is not None:
        v.skipped = [*v.skipped, cur]
    message = (
        f"Skipped image #{cur}, unlabelled: it stays out of your queue until you reload the page."
        if cur is not None
        else "No image on screen to skip."
    )
    v.current = None
    return show_next(ctx, v, request, message=message)


@requires("annotator")
def undo_redo(ctx: AppContext, action, v: View, request: gr.Request) -> dict:
    """``action`` "undo" or "redo" of this annotator's last change; shows the image it touched."""
    name = view.resolve_annotator(v.name, request)
    try:
        res = getattr(ctx.store, action)(name)
    except StoreError as exc:
        return render(ctx, v, name, v.current, f"⚠️ {exc}")
    if res is None:
        return render(ctx, v, name, v.current, f"Nothing to {action}.")
    return render(ctx, v, name, res["image_id"], view.undo_text(action, res))


@requires("annotator")
def rerender(ctx: AppContext, v: View, request: gr.Request) -> dict:
    return render(ctx, v, view.resolve_annotator(v.name, request), v.current, center=v.center)


def zoom_center(ctx: AppContext, evt: gr.SelectData, zoom_v, v: View) -> dict:
    """A click on the patch moves the zoom centre there."""
    if v.current is None or not evt.index:
        return {}
    img, _ = ctx.store.load_image(v.current)
    if img is not None:
        v = replace(v, center=view.click_to_center(img.size, zoom_v, v.center, evt.index))
    return {"view": v}


# --- handlers: import, agreement, adjudication, export -----------------------------------------------------
@requires("researcher")
def import_folder(ctx: AppContext, path, v: View, request: gr.Request) -> dict:
    name = view.resolve_annotator(v.name, request) or "system"
    try:
        res = ctx.store.import_folder(path, allowed_roots=ctx.settings.allowed_roots, actor=name)
        msg = res.summary() + ("\n\n" + " ".join(res.notes) if res.notes else "")
    except (StoreError, FileNotFoundError, ValueError) as exc:
        msg = f"⚠️ **Import refused:** {exc}"
    out = show_next(ctx, v, request, exclude_current=False)
    return out | {"import_msg": msg, "dataset": gr.update(choices=[ANY, *ctx.store.datasets()])}


@requires("researcher")
def make_demo(ctx: AppContext):
    from trainer.data.synthetic import generate

    root = ctx.settings.data_dir / "demo_patches"
    if not root.exists():
        generate(root, patients_per_subtype=1, images_per_magnification=2, size=96, seed=7)
    return {
        "import_msg": f"Generated BreakHis-like demo patches (not real tissue) in `{root}`; press Import.",
        "import_path": str(root),
    }


@requires("annotator")
def agreement(ctx: AppContext):
    return view.agreement_tables(ctx.store)


@requires("annotator")
def conflicts_table(ctx: AppContext):
    return view.conflicts_table(ctx.store)


@requires("annotator")
def show_conflict(ctx: AppContext, image_id, name_box, blind_v, request: gr.Request):
    if image_id is None:
        return None, "Pick a conflict."
    try:
        img, problem = ctx.store.load_image(int(image_id))
        votes = ctx.store.annotations(image_id=int(image_id))
    except StoreError as exc:
        return None, f"⚠️ {exc}"
    text = "Votes: " + "; ".join(
        f"{a['annotator']}: {view.label_text(a['label'], a['subtype'])}" + (f" ({a['note']})" if a["note"] else "")
        for a in votes
    )
    text += "\n\n" + view.details(ctx.store, int(image_id), view.resolve_annotator(name_box, request), blind=blind_v)
    return img, (f"⚠️ **{problem}**\n\n" if problem else "") + text


def pick_conflict(evt: gr.SelectData, table):
    try:
        return int(table.iloc[evt.index[0], 0])
    except (TypeError, ValueError, IndexError, AttributeError):
        return None


@requires("annotator")
def adjudicate(ctx: AppContext, image_id, label, sub, note_v, name_box, request: gr.Request):
    try:
        if image_id is None:
            raise StoreError("pick a conflict first")
        name = view.resolve_annotator(name_box, request)
        # Only a logged-in admin may settle a conflict they voted on (open mode's rights are everyone's).
        admin = auth_mode(ctx.settings) == "users" and role_of(ctx.settings, request) == "admin"
        saved = ctx.store.adjudicate(image_id, name, label=label, subtype=sub or None, note=note_v or "", admin=admin)
    except StoreError as exc:
        return f"⚠️ Not saved: {exc}", gr.update()
    return f"Final label saved for image #{saved['image_id']}.", view.conflicts_table(ctx.store)


@requires("annotator")
def export(ctx: AppContext, kind: str):
    """(file to download, message) of an export: ``csv`` / ``json`` of every annotation, or the ``dataset``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tmp = Path(tempfile.mkdtemp(prefix="histoapp-export-"))
    try:
        if kind == "csv":
            return str(ctx.store.export_csv(tmp / f"annotations-{stamp}.csv")), "CSV ready."
        if kind == "json":
            return str(ctx.store.export_json(tmp / f"annotations-{stamp}.json")), "JSON ready."
        out = ctx.store.export_dataset(ctx.settings.data_dir / "exports" / f"annotations-{stamp}")
        archive = shutil.make_archive(str(tmp / out.name), "zip", out)
        return archive, f"Dataset written to `{out}` (train on it with `data.root={out}`) and zipped for download."
    except StoreError as exc:
        return None, f"⚠️ {exc}"


def bind_view(ctx: AppContext, outputs: dict, fn, *first, refusal: str | None = None):
    """``bind`` for the queue view: ``fn(ctx, *first, *extra, v, request)`` for an event whose inputs are the
    ``CONTROLS``, the state, then ``extra`` components (last: SUBMISSION_ID_JS fills the last input). The
    controls' values go into a copy of the state, the event's own ``View`` (what the page showed when it was sent;
    the stored state changes only by the event's ``view`` output). ``refusal``: the output a refused click's
    message goes to."""

    def handler(*values):
        n = len(CONTROLS)
        shown, state_v, extra = values[:n], values[n], values[n + 1 :]
        v = replace(state_v, skipped=list(state_v.skipped), **dict(zip(CONTROLS, shown, strict=True)))
        return fn(ctx, *first, *extra, v, current_request())

    return bind(refusal_as_message(handler, refusal) if refusal else handler, outputs=outputs)


# --- layout and wiring ------------------------------------------------------------------------------------
def build(ctx: AppContext) -> None:
    settings = ctx.settings
    gr.Markdown(
        "### Annotate\nLabel patches benign/malignant and by subtype, review the models' disagreements, and "
        "export the labels as a dataset the trainer reads. Every click is saved at once."
    )
    state = gr.State(View())  # the queue view: what is on screen, skipped, the zoom centre
    sub_id = gr.Textbox(visible=False)  # filled by SUBMISSION_ID_JS

    with gr.Row(equal_height=True):
        annotator = gr.Textbox(label="Annotator", placeholder="your name (or log in)", elem_id="ann-annotator", scale=2)
        mode = gr.Dropdown([(f"{k}: {v}", k) for k, v in MODES.items()], value="mine", label="Queue", scale=3)
        mag = gr.Dropdown([ANY, *MAGNIFICATIONS], value=ANY, label="Magnification", scale=1)
        dataset = gr.Dropdown([ANY], value=ANY, label="Dataset", allow_custom_value=True, scale=1)
        with gr.Column(scale=2, min_width=200):
            blind = gr.Checkbox(False, label=f"Blind mode (hide {BLIND_HIDES})")
            auto_next = gr.Checkbox(True, label="Go to the next image after labelling")
    progress = gr.Markdown(elem_id="ann-progress")

    with gr.Row():
        with gr.Column(scale=3):
            viewer = gr.Image(
                label="Patch (click to set the zoom centre; fullscreen button for a large view)",
                type="pil",
                format="png",  # lossless: a pathologist judges fine detail
                height=560,
                interactive=False,
                buttons=["fullscreen", "download"],
                elem_id="ann-viewer",
            )
            zoom = gr.Slider(1, 8, value=1, step=1, label="Zoom")
            info = gr.Markdown(elem_id="ann-info")
        with gr.Column(scale=2):
            # Each class button heads a column of its own subtypes, so no subtype sits under the other class.
            sub_buttons, class_buttons = [], {}
            with gr.Row():
                classes = ((0, "Benign (B)", "primary", "ann-benign"), (1, "Malignant (M)", "stop", "ann-malignant"))
                for cls, text, variant, elem_id in classes:  # the ids the keyboard shortcuts click (shortcuts.KEYMAP)
                    with gr.Column(min_width=160, elem_id=f"ann-class-{cls}"):
                        class_buttons[cls] = gr.Button(text, elem_id=elem_id, variant=variant)
                        for key, code, name in view.SUBTYPE_BUTTONS:
                            if SUBTYPE_LABEL[code] == cls:
                                button = gr.Button(f"{key} {name}", elem_id=f"ann-sub-{key}", size="sm")
                                sub_buttons.append((code, button))
            benign, malignant = class_buttons[0], class_buttons[1]
            confidence = gr.Slider(0, 1, value=1, step=0.05, label="Confidence")
            flags = gr.CheckboxGroup(view.FLAG_CHOICES, label="Quality flags")
            note = gr.Textbox(label="Note", lines=2)
            with gr.Row():
                skip = gr.Button("Skip (S)", elem_id="ann-skip", size="sm")
                undo = gr.Button("Undo (U)", elem_id="ann-undo", size="sm")
                redo = gr.Button("Redo (R)", elem_id="ann-redo", size="sm")
                nxt = gr.Button("Next (N)", elem_id="ann-next", size="sm")
            status = gr.Markdown(elem_id="ann-status")
            rating = annotate_rating.panel()  # the map's rating, beside the label (issue 27)
            gr.Markdown(HELP)
    gr.Markdown("#### Your latest labels")
    recent = gr.HTML(view.recent_table(None, ""), elem_id="ann-recent")  # no name yet: no store read at build

    # Researchers only (shown on page load by role: an annotator never sees a button that would refuse them).
    with gr.Accordion("Import a folder or a BreakHis root", open=False, visible=False) as import_box:
        roots = ", ".join(f"`{r}`" for r in settings.allowed_roots)
        gr.Markdown(
            f"Folders under {roots} (set `HISTOAPP_DATA_ROOTS` for more). BreakHis roots, folders of class "
            "folders and CSV manifests keep their labels as *source labels*; any other folder of images is "
            "queued unlabelled. The same image (same bytes) is never queued twice."
        )
        with gr.Row():
            import_path = gr.Textbox(label="Folder", elem_id="ann-import-path", scale=4)
            import_btn = gr.Button("Import", elem_id="ann-import", scale=1)
            demo_btn = gr.Button("Make demo patches", scale=1)
        import_msg = gr.Markdown(elem_id="ann-import-msg")

    with gr.Accordion("Agreement", open=False):
        agree_btn = gr.Button("Compute agreement", size="sm")
        agree_md = gr.Markdown()
        agree_pairs = gr.Dataframe(label="Between annotators (Cohen's kappa)", interactive=False)
        agree_models = gr.Dataframe(label="Annotators vs models and source labels (Cohen's kappa)", interactive=False)

    with gr.Accordion("Adjudication", open=False):
        gr.Markdown(
            "Images whose annotators disagree. Pick one (click its row), then save the final label; the "
            "export uses it. Your annotator name is recorded as the adjudicator: someone who did not label the image "
            "(an admin may settle one they labelled; the audit log records it)."
        )
        conflicts_btn = gr.Button("Refresh conflicts", size="sm")
        conflicts = gr.Dataframe(interactive=False, elem_id="ann-conflicts")
        with gr.Row():
            with gr.Column(scale=2):
                adj_image = gr.Image(label="Conflict", type="pil", format="png", height=320, interactive=False)
            with gr.Column(scale=3):
                adj_id = gr.Number(label="Image id", precision=0)
                adj_info = gr.Markdown()
                adj_label = gr.Radio([("benign", 0), ("malignant", 1)], label="Final label")
                adj_sub = gr.Dropdown(
                    [("none", "")] + [(f"{c} {SUBTYPE_NAMES[c]}", c) for c in SUBTYPES], value="", label="Final subtype"
                )
                adj_note = gr.Textbox(label="Adjudication note")
                adj_btn = gr.Button("Save final label", variant="primary")
                adj_msg = gr.Markdown()

    with gr.Accordion("Export", open=False):
        gr.Markdown(
            "CSV / JSON: every annotation. Dataset: the consensus labels (adjudicated, else unanimous) as "
            "class folders + `manifest.csv` + `provenance.json` (the annotation ids and database state it "
            "was made from); it is also written under the data folder, ready for `python -m trainer`."
        )
        with gr.Row():
            csv_btn = gr.Button("Export CSV", elem_id="ann-export-csv")
            json_btn = gr.Button("Export JSON", elem_id="ann-export-json")
            ds_btn = gr.Button("Export dataset (zip)", elem_id="ann-export-dataset")
        export_file = gr.File(label="Download", interactive=False, elem_id="ann-export-file")
        export_msg = gr.Markdown()

    gr.HTML("", js_on_load=JS, elem_id="ann-shortcuts", padding=False)

    # --- wiring -------------------------------------------------------------------------------------
    outputs = {
        "view": state,
        "viewer": viewer,
        "info": info,
        "progress": progress,
        "status": status,
        "recent": recent,
        "annotator": annotator,
        "dataset": dataset,
        "import_box": import_box,
        "import_msg": import_msg,
        "import_path": import_path,
        **rating.outputs,
    }
    view_outputs = [outputs[k] for k in VIEW_OUTPUTS]
    controls = [annotator, mode, mag, dataset, blind, zoom, state]  # CONTROLS, then the state

    viewing = bind(bind_view, ctx, outputs)  # viewing(fn, *first): a queue-view handler, wired

    # In open mode the name typed in the box is used, so leaving the box (with the click on a label button)
    # refreshes the queue (``rename``) right next to that click: the events that change the view run one at a
    # time, in the order they came, so neither works from the image the other is replacing. Open mode has one
    # user; with logins the box's events change nothing, and each annotator's clicks keep their own workers.
    in_order = {"concurrency_id": "annotate-view", "concurrency_limit": 1} if auth_mode(settings) == "open" else {}
    quiet = {"show_progress": "hidden", **in_order}
    label_inputs = [*controls, auto_next, confidence, flags, note, sub_id]  # sub_id last: SUBMISSION_ID_JS
    for btn, label, subtype in [(benign, 0, None), (malignant, 1, None)] + [(b, None, code) for code, b in sub_buttons]:
        btn.click(
            viewing(save_label, label, subtype),
            label_inputs,
            view_outputs,
            js=SUBMISSION_ID_JS,
            trigger_mode="once",
            **quiet,
        )
    annotate_rating.wire(rating, viewing, controls, blind, sub_id)
    skip.click(viewing(skip_image), controls, view_outputs, **quiet)
    nxt.click(viewing(show_next), controls, view_outputs, **quiet)
    for btn, action in ((undo, "undo"), (redo, "redo")):
        btn.click(viewing(undo_redo, action), controls, view_outputs, trigger_mode="once", **quiet)
    for comp in (mode, mag, dataset):
        comp.input(viewing(refilter), controls, view_outputs, **quiet)
    # The name is remembered by the browser (localStorage), so a reload comes back to the same annotator.
    annotator.input(None, annotator, None, js=REMEMBER_NAME_JS)
    annotator.blur(viewing(rename), controls, view_outputs, **quiet)
    annotator.submit(viewing(rename), controls, view_outputs, **quiet)
    blind.change(viewing(rerender), controls, view_outputs, **quiet)
    zoom.release(viewing(rerender), controls, view_outputs, **quiet)
    viewer.select(bind(zoom_center, ctx, outputs=outputs), [zoom, state], state).then(
        viewing(rerender), controls, view_outputs, **quiet
    )

    import_outputs = [import_msg, dataset, *view_outputs]
    import_btn.click(viewing(import_folder, refusal="import_msg"), [*controls, import_path], import_outputs)
    demo_btn.click(
        refusal_as_message(bind(make_demo, ctx, outputs=outputs), "import_msg"), None, [import_msg, import_path]
    )
    agree_btn.click(bind(agreement, ctx), None, [agree_md, agree_pairs, agree_models])
    conflicts_btn.click(bind(conflicts_table, ctx), None, conflicts)
    conflicts.select(pick_conflict, conflicts, adj_id).then(
        bind(show_conflict, ctx), [adj_id, annotator, blind], [adj_image, adj_info]
    )
    adj_id.submit(bind(show_conflict, ctx), [adj_id, annotator, blind], [adj_image, adj_info])
    adj_btn.click(
        bind(adjudicate, ctx),
        [adj_id, adj_label, adj_sub, adj_note, annotator],
        [adj_msg, conflicts],
        trigger_mode="once",
    )
    for btn, kind in ((csv_btn, "csv"), (json_btn, "json"), (ds_btn, "dataset")):
        btn.click(bind(export, ctx, kind), None, [export_file, export_msg])

    # Page load: the saved annotator name, datasets, the first image.
    if ctx.blocks is None:
        raise RuntimeError("annotate.build(ctx) needs ctx.blocks, the gr.Blocks being built (see build_app)")
    ctx.blocks.load(
        viewing(on_load),
        controls,
        [annotator, dataset, import_box, *view_outputs],
        js=RESTORE_NAME_JS,
        show_progress="hidden",
    )

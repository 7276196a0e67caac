"""Predict & Explain tab: CNN and VLM predictions side by side with Grad-CAM / attention overlays, a batch
table with CSV download, and disagreements sent to the annotation queue. Every prediction carries its OOD score
and the abstention rule's verdict (``trainer.trust``): when a model abstains the tab shows the reason instead of
a label, dims the probability bars and shows no heat map.

The handlers below are plain functions of (context, inputs) so they can be tested without a browser; heavy
modules (torch, the models) are imported on first use so the app starts fast."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from histoapp.auth import requires, who
from histoapp.public import check_rate, pixel_budget
from histoapp.ui.zerogpu import ZEROGPU, gpu
from histoapp.visitor_files import downloads_dir

ACCEPTED = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MAX_BATCH = 200  # patches per request: bounds memory and queue time
DISPLAY_MIN = 384  # shorter side of the overlays on screen
PREDICTED = "predicted class"
NO_MODEL = ""
MAGS = ["unknown", "40X", "100X", "200X", "400X"]
TRUST_COLUMNS = ("ood_score", "ood", "abstain_reason")
TABLE_COLUMNS = [
    "file",
    "magnification",
    "cnn_label",
    "cnn_p_malignant",
    *(f"cnn_{c}" for c in TRUST_COLUMNS),
    "vlm_label",
    "vlm_p_malignant",
    *(f"vlm_{c}" for c in TRUST_COLUMNS),
    "agree",
    "error",
]
# The on-screen batch table: readable names, narrow enough for the VLM's columns to show (the CSV has them all).
VIEW_COLUMNS = ["File", "Mag.", "CNN", "CNN P(malignant)", "VLM", "VLM P(malignant)", "Agree", "Notes"]
NO_ANSWER = "no answer"  # the label cell of a model that abstains
# Probability bars of an abstaining model are dimmed (the Label gets this class; the style is in ``build``).
ABSTAINED_CLASS = "abstained"
STYLE = "<style>.abstained .confidence-set, .abstained .output-class {opacity: 0.3; filter: grayscale(1);}</style>"
INTRO = (
    "### Predict & explain\nUpload one or more H&E patches (PNG, JPEG or TIFF) or pick an example. A CNN and a "
    "vision-language model classify each patch side by side; the CNN's Grad-CAM and the VLM's label-token attention "
    "show where they looked. The bundled demo models were trained by this project's trainer on real IDC "
    "breast-cancer patches (malignant = invasive ductal carcinoma in the patch), not on BreakHis. "
    "**Research and teaching tool — not a diagnostic device.**"
)


@dataclass
class Item:
    """One uploaded patch and what the models said about it."""

    name: str
    path: str | None = None  # our copy under data_dir/uploads (Gradio's temp files vanish)
    magnification: str | None = None
    image: object = None  # PIL RGB
    error: str = ""
    cnn: object = None  # trainer.predict.Prediction
    vlm: object = None
    cnn_plain_ms: float | None = None
    vlm_plain_ms: float | None = None

    @property
    def compared(self) -> bool:
        """Both models answered (a model that abstains, for any reason, has no label to agree or disagree with)."""
        return _answered(self.cnn) and _answered(self.vlm)

    @property
    def disagree(self) -> bool:
        """Both models answered and their labels differ."""
        return self.compared and self.cnn.label != self.vlm.label

    @property
    def agree_cell(self) -> str:
        """The batch table's and CSV's agreement: yes / no, empty unless both models answered."""
        return ("no" if self.disagree else "yes") if self.compared else ""


@dataclass
class Session:
    items: list[Item] = field(default_factory=list)
    current: int = 0
    cnn_key: str = NO_MODEL
    vlm_key: str = NO_MODEL
    tta: bool = False  # the shown patch's uncertainty from 8 flips / rotations (8x the prediction time)


# --- reading uploads ---------------------------------------------------------------------------------


def _paths(files) -> list[str]:
    if not files:
        return []
    files = files if isinstance(files, (list, tuple)) else [files]
    return [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files]


def _display_name(path: str) -> str:
    # Gradio keeps the original file name as the last path component of its temp copy.
    return Path(path).name


def read_uploads(ctx, paths: list[str], magnification: str | None) -> list[Item]:
    """``read_upload`` of each path, within one request's pixel budget in public mode (``histoapp.public``): what
    the earlier images decoded is taken from what the later ones may."""
    budget = pixel_budget(ctx.settings)
    items = []
    for path in paths:
        items.append(read_upload(ctx, path, magnification, budget))
        if budget is not None and items[-1].image is not None:
            budget -= items[-1].image.width * items[-1].image.height
    return items


def read_upload(ctx, path: str, magnification: str | None, pixels: int | None = None) -> Item:
    """Decode one upload defensively (``trainer.data.images.load_rgb``) and, outside public mode, keep a copy under
    data_dir/uploads (for the annotation queue; a public demo keeps no upload). Without a chosen ``magnification``,
    the one the file name states (``..._400X_...``, BreakHis names; 40X for an IDC patch name) is used. ``pixels``:
    at most this many decoded (a JPEG over it is decoded at a reduced scale; another image is refused)."""
    from trainer.data.breakhis import magnification_in_name
    from trainer.data.images import MAX_PIXELS, ImageError, load_rgb
    from trainer.data.sources import IDC_MAGNIFICATION, parse_idc_name

    name = _display_name(path)
    # An IDC patch name (``<patient>_idx5_x<X>_y<Y>_class<C>.png``) says no magnification: the dataset is 40X.
    named = magnification_in_name(name) or (IDC_MAGNIFICATION if parse_idc_name(name) else None)
    item = Item(name, magnification=magnification or named)
    if Path(path).suffix.lower() not in ACCEPTED:
        item.error = f"unsupported file type {Path(path).suffix or '(none)'}; upload PNG, JPEG or TIFF"
        return item
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        item.error = f"upload not readable ({exc.strerror})"
        return item
    limit = ctx.settings.max_upload_mb * 2**20
    if size > limit:
        item.error = f"file too large ({size / 2**20:.1f} MB > {ctx.settings.max_upload_mb} MB)"
        return item
    cap = MAX_PIXELS if pixels is None else max(0, min(MAX_PIXELS, pixels))
    try:
        item.image = load_rgb(path, name=item.name, max_pixels=cap, reduce=pixels is not None)
    except ImageError as exc:
        item.error = exc.reason
        if cap < MAX_PIXELS and exc.reason.startswith("image too large"):
            item.error += (
                f" — the public demo decodes at most {ctx.settings.public_pixels:,} pixels per request, "
                f"{cap:,} were left for this image"
            )
        return item
    if pixels is None:  # a public demo keeps no copy
        try:
            item.path = str(_keep_copy(ctx, path, item.name))
        except OSError:  # a read-only or full data folder: predict from the upload itself
            item.path = path
    return item


def _keep_copy(ctx, path: str, name: str) -> Path:
    """Content-addressed copy, so the same patch uploaded twice is stored once."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[-80:]
    dest = Path(ctx.settings.data_dir) / "uploads" / f"{digest}_{safe}"
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
    return dest


# --- running the models ------------------------------------------------------------------------------


# ZeroGPU runs these in a worker process and pickles their arguments and results: they take the
# registry's id (not the context, which holds locks), an operation's name and its arguments.
_REGISTRIES: dict[int, object] = {}


def _registry_id(ctx) -> int:
    reg = ctx.registry
    _REGISTRIES[id(reg)] = reg
    return id(reg)


@gpu
def _gpu_call(reg_id: int, op: str, *args):
    from histoapp.models.ops import OPS

    return OPS[op](_REGISTRIES[reg_id], *args)


@gpu(duration=120)
def _gpu_call_long(reg_id: int, op: str, *args):
    from histoapp.models.ops import OPS

    return OPS[op](_REGISTRIES[reg_id], *args)


def models_call(ctx, op: str, *args):
    """A model operation (``histoapp.models.ops``): in the model worker when the app has one (``launch()``), else
    in this process (on ZeroGPU through ``spaces.GPU``)."""
    if ZEROGPU:
        return (_gpu_call_long if op in ("explain_vlm", "answer_vlm") else _gpu_call)(_registry_id(ctx), op, *args)
    return ctx.models.call(op, *args)


def _batched(ctx, op: str, key: str, images: list, *options) -> list:
    """``op(key, images, *options)``, with these patches batched together with other requests' for the same model
    and options (``histoapp.models.batcher``): the caller's role and rate were checked before."""
    if ZEROGPU:
        return models_call(ctx, op, key, images, *options)
    return ctx.registry.batcher.map((op, key, *options), lambda ims: ctx.models.call(op, key, ims, *options), images)


def batch_call(ctx, group, fn, item):
    """``fn([item, ...])[0]`` with ``item`` batched together with other calls of the same ``group`` (a whole
    request's work: the API's predictions); the caller's role and rate were checked before."""
    if ZEROGPU:
        return fn([item])[0]
    return ctx.registry.batcher.run(group, fn, item)


def classify_images(ctx, key: str, images: list) -> list:
    """Probabilities of each patch with model ``key`` (the batch table's, and the API's plain prediction)."""
    return _batched(ctx, "classify", key, images)


def tta_images(ctx, key: str, images: list) -> list:
    """``classify_images`` with test-time augmentation (8 views per patch, one batch)."""
    return _batched(ctx, "classify", key, images, True)


def explain_cnn_images(ctx, key: str, images: list, method: str, target: str | None = None) -> list:
    """A CNN's probabilities and CAM (``method``, of class ``target``; default the predicted one) for each patch."""
    return _batched(ctx, "explain_cnn", key, images, method, target)


def explain_vlm_images(ctx, key: str, images: list) -> list:
    """A VLM's probabilities and label-token attention map for each patch (one pass for all of them)."""
    return _batched(ctx, "explain_vlm", key, images)


def model_concurrency(settings) -> int:
    """Model-running events at once (the Predict tab's and the API's, one group): enough for a full batch to
    gather in the batcher; without batching, two (one per core)."""
    return max(2, settings.predict_batch)


# --- rendering ---------------------------------------------------------------------------------------


def _display(image):
    """Small patches are enlarged for the screen (the heatmap is then resized onto the enlarged patch)."""
    from PIL import Image

    scale = DISPLAY_MIN / min(image.size)
    return (
        image if scale <= 1 else image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    )


def _abstained(pred) -> bool:
    return getattr(pred, "abstain", None) is not None


def _answered(pred) -> bool:
    return pred is not None and not _abstained(pred)


def _may_annotate(ctx) -> bool:
    """Whether the request being served may send patches to the annotation queue (public visitors and viewers
    may not: the button is not offered to them)."""
    from histoapp.auth import at_least, current_request, role_of

    return at_least(role_of(ctx.settings, current_request()), "annotator")


def _overlay(item: Item, pred, opacity: float):
    """The patch with the model's heat map; an abstaining model's map explains nothing, so the bare patch."""
    if item is None or item.image is None:
        return None
    if pred is None or pred.explanation is None or _abstained(pred):
        return _display(item.image)
    from histoapp.explain.overlay import overlay

    return overlay(_display(item.image), pred.explanation.heatmap, float(opacity))


def domain_notes(ctx, key: str, item: Item | None) -> tuple[str, list[str]]:
    """What model ``key`` was trained on, and why this patch lies outside it (another magnification tag, another
    scale): ``histoapp.models.domain``. ("", []) for no model or no image."""
    from histoapp.models.domain import domain_of

    if not key or item is None or item.image is None:
        return "", []
    try:
        domain = domain_of(ctx.registry.get(key))
    except KeyError:
        return "", []
    return domain.describe(), domain.warnings(item.image.size, item.magnification)


def _domain_md(ctx, key: str, item: Item | None) -> str:
    trained_on, warnings = domain_notes(ctx, key, item)
    if not trained_on:
        return ""
    return "\n\n".join([f"*{trained_on}*"] + [f"⚠️ {w[0].upper()}{w[1:]}." for w in warnings])


def _info(pred, plain_ms: float | None, what: str, domain: str = "", size: tuple[int, int] | None = None) -> str:
    """The model's answer (or why it abstains), what it was trained on (``domain``), trust figures, timings and
    what its heat map shows (for an image of ``size``: which part the model saw)."""
    from histoapp.models.domain import crop_note

    if pred is None:
        return ""
    if _abstained(pred):
        head = (
            f"⛔ **No answer** — {pred.abstain_reason}.\n\n"
            f"P(malignant) = {pred.prob_malignant:.3f}, dimmed: it is not an answer here"
        )
    else:
        head = f"**{pred.label}** — P(malignant) = {pred.prob_malignant:.3f}"
    lines = [head] + ([domain] if domain else [])
    trust = []
    raw = getattr(pred, "prob_malignant_raw", None)
    if raw is not None and abs(raw - pred.prob_malignant) >= 5e-4:
        trust.append(f"calibrated (the model's own {raw:.3f})")
    if getattr(pred, "ood_score", None) is not None and pred.ood_threshold is not None:
        trust.append(f"OOD score {pred.ood_score:.4g} (threshold {pred.ood_threshold:.4g})")
    trust += list(getattr(pred, "notes", None) or [])
    if trust:
        lines.append(" · ".join(trust))
    tta = getattr(pred, "tta", None)
    if tta:
        lines.append(
            f"Uncertainty over {tta.views} flips/rotations: P(malignant) {tta.mean:.3f} ± {tta.std:.3f} "
            f"(range {tta.min:.3f}-{tta.max:.3f})"
        )
    times = []
    if plain_ms is not None:
        times.append(f"prediction {plain_ms:.0f} ms")
    if pred.explanation is not None:
        times.append(f"prediction + {what} {pred.latency_ms:.0f} ms")
    if "tta_ms" in pred.extra:
        ratio = f", {pred.extra['tta_ms'] / plain_ms:.1f}x the prediction alone" if plain_ms else ""
        times.append(f"uncertainty (8 flips / rotations in one batch) {pred.extra['tta_ms']:.0f} ms{ratio}")
    if "answer_ms" in pred.extra:
        times.append(f"answer {pred.extra['answer_ms']:.0f} ms")
    if times:
        lines.append(" · ".join(times))
    text = "\n\n".join(lines)
    exp = pred.explanation
    if _abstained(pred) and exp is not None:
        return text + "\n\n*No heat map shown: a model that abstains has nothing to explain.*"
    seen = crop_note(size) if size and exp is not None else ""
    explained = ". ".join(t for t in (exp.description if exp is not None else "", seen) if t)
    return text + (f"\n\n*{explained}*" if explained else "")


def _label(pred, kind: str) -> dict:
    """The probability bars; an abstaining model's are dimmed and carry no headline label."""
    if pred is None:
        return gr.update(value=None, show_heading=True, elem_classes=[], label=f"{kind} prediction")
    off = _abstained(pred)
    return gr.update(
        value=pred.scores,
        show_heading=not off,
        elem_classes=[ABSTAINED_CLASS] if off else [],
        label=f"{kind}: no answer (probabilities dimmed)" if off else f"{kind} prediction",
    )


def _agreement(ctx, session: Session) -> tuple[str, dict]:
    """The line comparing the two models: only where both answered (an abstaining model has no label to agree
    or disagree with), and the queue button for a user who may annotate."""
    hidden = gr.update(visible=False)
    both = [it for it in session.items if it.cnn is not None and it.vlm is not None]
    if not both:
        return "", hidden
    compared = [it for it in both if it.compared]
    bad = [it for it in compared if it.disagree]
    send = _may_annotate(ctx)
    if len(session.items) == 1:
        it = both[0]
        off = [kind for kind, pred in (("CNN", it.cnn), ("VLM", it.vlm)) if _abstained(pred)]
        if off:
            verb = "abstain" if len(off) > 1 else "abstains"
            return f"⛔ No comparison: the {' and the '.join(off)} {verb} (the reason is above).", hidden
        if not it.disagree:
            return f"✅ The CNN and the VLM agree: **{it.cnn.label}**.", hidden
        text = (
            f"⚠️ **The CNN and the VLM disagree**: CNN **{it.cnn.label}** (P(malignant) {it.cnn.prob_malignant:.2f}), "
            f"VLM **{it.vlm.label}** (P(malignant) {it.vlm.prob_malignant:.2f}). A pathologist's label would settle it."
        )
        return text, gr.update(visible=send, value="Send to annotation queue")
    skipped = len(both) - len(compared)
    note = f" {skipped} patch(es) with an abstention: not compared." if skipped else ""
    if not compared:
        return "⛔ No comparison: on every patch at least one model abstains.", hidden
    if not bad:
        return f"✅ The CNN and the VLM agree on all {len(compared)} patches both answered.{note}", hidden
    return (
        f"⚠️ **The CNN and the VLM disagree on {len(bad)} of {len(compared)} patches both answered** (see the "
        f"table).{note}",
        gr.update(visible=send, value=f"Send {len(bad)} disagreeing patch(es) to annotation queue"),
    )


def _cells(pred) -> list:
    """label, P(malignant), ood_score, ood, abstain_reason of one model for the batch table."""
    if pred is None:
        return ["", None, None, "", ""]
    ood = getattr(pred, "ood", None)
    score = getattr(pred, "ood_score", None)
    return [
        NO_ANSWER if _abstained(pred) else pred.label,
        round(pred.prob_malignant, 4),
        None if score is None else round(float(score), 4),
        "" if ood is None else ("yes" if ood else "no"),
        getattr(pred, "abstain_reason", None) or "",
    ]


def _table_rows(session: Session) -> list[list]:
    rows = []
    for it in session.items:
        rows.append([it.name, it.magnification or ""] + _cells(it.cnn) + _cells(it.vlm) + [it.agree_cell, it.error])
    return rows


def _view_rows(session: Session) -> list[list]:
    """The batch table on screen: label and P(malignant) per model, agreement, and in Notes why a model gave no
    answer (the short reason; the CSV has the full one) and any error."""
    from trainer.trust.abstain import CODES

    rows = []
    for it in session.items:
        notes = [
            f"{kind}: {CODES.get(pred.abstain, pred.abstain).split(' (')[0]}"
            for kind, pred in (("CNN", it.cnn), ("VLM", it.vlm))
            if _abstained(pred)
        ] + ([it.error] if it.error else [])
        cells = []
        for pred in (it.cnn, it.vlm):
            cells += ["", None] if pred is None else [_cells(pred)[0], round(pred.prob_malignant, 3)]
        rows.append([it.name, it.magnification or "unknown", *cells, it.agree_cell, "; ".join(notes)])
    return rows


def _write_csv(ctx, session: Session) -> str:
    out = Path(tempfile.mkdtemp(prefix="predict-", dir=downloads_dir(ctx.settings))) / "predictions.csv"
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TABLE_COLUMNS + ["cnn_model", "vlm_model"])
        for row in _table_rows(session):
            w.writerow(row + [session.cnn_key, session.vlm_key])
    return str(out)


def _errors_md(session: Session, extra: list[str] | None = None) -> str:
    lines = [f"- `{it.name}`: {it.error}" for it in session.items if it.error] + [f"- {e}" for e in extra or []]
    return ("#### ⚠️ Could not use\n" + "\n".join(lines)) if lines else ""


def _answer(vlm) -> dict:
    """The VLM's free text; none from a VLM that abstains (its words would read as the answer it withholds)."""
    if _abstained(vlm):
        return gr.update(value="", label="VLM answer (free text): none, the VLM abstains")
    return gr.update(value=(vlm.answer or "") if vlm else "", label="VLM answer (free text)")


def _card_title(ctx, key: str, kind: str) -> str:
    if not key:
        return f"#### {kind}: none selected"
    try:
        return f"#### {kind}: {ctx.registry.get(key).name}"
    except KeyError:
        return f"#### {kind}: {key}"


def render(ctx, session: Session, opacity: float, extra_errors: list[str] | None = None):
    """Every output of the tab from the session state (order: see ``build``)."""
    item = session.items[session.current] if session.items and 0 <= session.current < len(session.items) else None
    cnn = item.cnn if item else None
    vlm = item.vlm if item else None
    agree_text, send = _agreement(ctx, session)
    many = len(session.items) > 1
    readable = [it.name for it in session.items if it.image is not None]
    size = item.image.size if item and item.image is not None else None
    return (
        _errors_md(session, extra_errors),
        _card_title(ctx, session.cnn_key, "CNN"),
        _label(cnn, "CNN"),
        _info(cnn, item.cnn_plain_ms if item else None, "CAM", _domain_md(ctx, session.cnn_key, item), size),
        _overlay(item, cnn, opacity) if cnn else None,
        _card_title(ctx, session.vlm_key, "VLM"),
        _label(vlm, "VLM"),
        _info(vlm, item.vlm_plain_ms if item else None, "attention", _domain_md(ctx, session.vlm_key, item), size),
        _overlay(item, vlm, opacity) if vlm else None,
        _answer(vlm),
        agree_text,
        send,
        "",  # send status
        gr.update(value=_view_rows(session), visible=many),
        gr.update(value=_write_csv(ctx, session) if many else None, visible=many),
        gr.update(
            choices=readable,
            value=item.name if item and item.image is not None else None,
            visible=many and len(readable) > 1,
        ),
        session,
    )


# --- handlers ----------------------------------------------------------------------------------------


def magnification_tag(value: str | None) -> str | None:
    from trainer.data.records import normalise_magnification

    return None if value in (None, "", "unknown") else normalise_magnification(value)


def _detail(ctx, session: Session, method: str, target: str | None, errors: list[str]) -> None:
    item = session.items[session.current]
    if item.image is None:
        return
    if session.cnn_key:
        try:
            (item.cnn,) = explain_cnn_images(ctx, session.cnn_key, [item.image], method, target)
        except Exception as exc:  # a model failing must not take the app down; say what happened
            errors.append(f"CNN explanation failed for `{item.name}`: {exc.__class__.__name__}: {exc}")
    if session.vlm_key:
        try:
            (pred,) = explain_vlm_images(ctx, session.vlm_key, [item.image])
            # An abstaining VLM's free text is not shown: not worth its generation time either.
            item.vlm = pred if _abstained(pred) else models_call(ctx, "answer_vlm", session.vlm_key, item.image, pred)
        except Exception as exc:
            errors.append(f"VLM explanation failed for `{item.name}`: {exc.__class__.__name__}: {exc}")
    if session.tta:
        _add_tta(ctx, session, item, errors)


def _add_tta(ctx, session: Session, item: Item, errors: list[str]) -> None:
    """The shown patch's spread of P(malignant) over its 8 flips / rotations, and what it cost."""
    for key, attr, kind in ((session.cnn_key, "cnn", "CNN"), (session.vlm_key, "vlm", "VLM")):
        pred = getattr(item, attr)
        if not key or pred is None:
            continue
        try:
            (spread,) = tta_images(ctx, key, [item.image])
        except Exception as exc:
            errors.append(f"{kind} test-time augmentation failed for `{item.name}`: {exc.__class__.__name__}: {exc}")
            continue
        pred.tta, pred.extra["tta_ms"] = spread.tta, spread.extra["tta_ms"]


def analyze(ctx, files, magnification, cnn_key, vlm_key, method, target, opacity, tta=False):
    session = Session(cnn_key=cnn_key or NO_MODEL, vlm_key=vlm_key or NO_MODEL, tta=bool(tta))
    paths = _paths(files)
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
        for key, attr, kind in ((session.cnn_key, "cnn", "CNN"), (session.vlm_key, "vlm", "VLM")):
            if not key:
                continue
            try:
                preds = classify_images(ctx, key, [it.image for it in readable])
            except Exception as exc:
                errors.append(f"{kind} prediction failed: {exc.__class__.__name__}: {exc}")
                continue
            for it, pred in zip(readable, preds, strict=True):
                setattr(it, attr, pred)
                setattr(it, f"{attr}_plain_ms", pred.latency_ms)
        session.current = session.items.index(readable[0])
        _detail(ctx, session, method, target, errors)
    return render(ctx, session, opacity, errors)


def show_item(ctx, session: Session, name, method, target, opacity):
    check_rate(ctx.settings)  # each of these handlers runs the models again: they count like a prediction
    errors: list[str] = []
    for i, it in enumerate(session.items):
        if it.name == name and it.image is not None:
            session.current = i
            _detail(ctx, session, method, target, errors)
            break
    return render(ctx, session, opacity, errors)


def re_explain(ctx, session: Session, method, target, opacity):
    """A new CAM method or target class: the CNN side of the shown patch only."""
    check_rate(ctx.settings)
    errors: list[str] = []
    item = session.items[session.current] if session.items else None
    if item is not None and session.cnn_key and item.image is not None:
        try:
            (item.cnn,) = explain_cnn_images(ctx, session.cnn_key, [item.image], method, target)
        except Exception as exc:
            errors.append(f"CNN explanation failed: {exc.__class__.__name__}: {exc}")
    return render(ctx, session, opacity, errors)


def toggle_tta(ctx, session: Session, tta, method, target, opacity):
    """The uncertainty checkbox: the shown patch with (or without) its 8 flips / rotations."""
    check_rate(ctx.settings)
    session.tta = bool(tta)
    errors: list[str] = []
    if session.items and 0 <= session.current < len(session.items):
        _detail(ctx, session, method, target, errors)
    return render(ctx, session, opacity, errors)


def reblend(session: Session, opacity):
    """The opacity slider: re-blend the kept heatmaps, no model runs."""
    item = session.items[session.current] if session.items else None
    return (
        _overlay(item, item.cnn, opacity) if item and item.cnn else None,
        _overlay(item, item.vlm, opacity) if item and item.vlm else None,
    )


@requires("annotator")
def send_to_annotation(ctx, session: Session) -> str:
    """Queue every disagreeing patch (image + both predictions) in the annotation store."""
    todo = [it for it in session.items if it.disagree and it.path]
    if not todo:
        return "Nothing to send: the models agree on every patch."
    try:
        store = ctx.store
    except Exception as exc:
        return f"⚠️ The annotation store is unavailable ({exc.__class__.__name__}: {exc}); nothing was sent. Your uploads are kept in `{Path(ctx.settings.data_dir) / 'uploads'}`."
    sent, actor = [], who(ctx.settings)
    try:
        for it in todo:
            image_id = store.add_image(it.path, dataset="uploads", magnification=it.magnification, actor=actor)
            for kind, key, pred in (("cnn", session.cnn_key, it.cnn), ("vlm", session.vlm_key, it.vlm)):
                store.add_prediction(
                    image_id,
                    model=key,
                    prob_malignant=float(pred.prob_malignant),
                    label=pred.label,
                    kind=kind,
                    actor=actor,
                )
            sent.append(it.name)
    except Exception as exc:
        return f"⚠️ Sending failed after {len(sent)} patch(es) ({exc.__class__.__name__}: {exc})."
    return f"✅ Sent {len(sent)} patch(es) to the annotation queue: {', '.join(sent)}."


def model_choices(ctx, family: str) -> tuple[list[tuple[str, str]], str | None]:
    """Dropdown choices (label, key) for a family: available models first; the demo model is the default."""
    usable = [e for e in ctx.registry.list(family) if e.available]
    return [(e.label, e.key) for e in usable], ctx.registry.default_key(family)


def models_status(ctx) -> tuple:
    """The warm-up's line and whether to keep polling it (``histoapp.models.warm``)."""
    warmup = ctx.warmup
    return warmup.status(), gr.Timer(active=not warmup.over)


def unavailable_md(ctx) -> str:
    """The models listed but not usable now, and why; not in public mode (a visitor can do nothing about the
    server's hub access)."""
    from histoapp.auth import mode

    if mode(ctx.settings) == "public":
        return ""
    off = [e for e in ctx.registry.list() if not e.available]
    return ("Not available now: " + "; ".join(f"`{e.name}`: {e.reason}" for e in off)) if off else ""


def target_choices(ctx, cnn_key: str | None) -> dict:
    classes = ["benign", "malignant"]
    if cnn_key:
        with contextlib.suppress(Exception):  # an unloadable model keeps the binary choices
            classes = models_call(ctx, "classes", cnn_key)
    return gr.update(choices=[PREDICTED] + list(classes), value=PREDICTED)


# --- layout ------------------------------------------------------------------------------------------


def build(ctx) -> None:
    from histoapp.explain import CAM_METHODS, DEFAULT_METHOD
    from histoapp.ui.examples import DATASETS, list_examples

    gr.Markdown(INTRO)
    try:
        cnn_choices, cnn_default = model_choices(ctx, "cnn")
        vlm_choices, vlm_default = model_choices(ctx, "vlm")
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
            mag = gr.Dropdown(MAGS, value="unknown", label="Magnification (optional tag)", elem_id="predict-mag")
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
                list(CAM_METHODS),
                value=DEFAULT_METHOD,
                label="CNN explanation (grad-cam)",
                # What each costs beside a plain prediction, demo CNN on a 2-core CPU (bench/README.md, issue 30).
                info="Cost per patch vs a plain prediction: Grad-CAM, Grad-CAM++ ~1.5x; Eigen-CAM ~1x; Score-CAM "
                "~70x (one pass per feature channel, 256 here: about a second on a CPU)",
            )
            target = gr.Dropdown([PREDICTED, "benign", "malignant"], value=PREDICTED, label="Explain class")
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
                poll.tick(lambda: models_status(ctx), None, [status, poll], queue=False, show_progress="hidden")
                ctx.blocks.load(lambda: models_status(ctx), None, [status, poll], queue=False, show_progress="hidden")
    errors = gr.Markdown(elem_id="predict-errors")
    gr.HTML(STYLE, container=False, padding=False)  # dims an abstaining model's probability bars
    with gr.Row(equal_height=False):
        with gr.Column(elem_id="predict-cnn-result"):
            cnn_title = gr.Markdown("#### CNN")
            cnn_label = gr.Label(num_top_classes=3, label="CNN prediction", elem_id="predict-cnn-label")
            cnn_info = gr.Markdown(elem_id="predict-cnn-info")
            cnn_img = gr.Image(
                label="CNN explanation (CAM overlay)", type="pil", interactive=False, elem_id="predict-cnn-overlay"
            )
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
            vlm_answer = gr.Textbox(label="VLM answer (free text)", interactive=False, elem_id="predict-vlm-answer")
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

    outputs = [
        errors,
        cnn_title,
        cnn_label,
        cnn_info,
        cnn_img,
        vlm_title,
        vlm_label,
        vlm_info,
        vlm_img,
        vlm_answer,
        agreement,
        send,
        send_status,
        table,
        csv_out,
        pick,
        session,
    ]
    common = dict(outputs=outputs, concurrency_limit=model_concurrency(ctx.settings), concurrency_id="models")
    run_inputs = [files, mag, cnn_dd, vlm_dd, method, target, opacity, tta]
    run.click(lambda *a: analyze(ctx, *a), run_inputs, **common)
    files.change(lambda *a: analyze(ctx, *a), run_inputs, **common)
    pick.input(lambda s, n, m, t, o: show_item(ctx, s, n, m, t, o), [session, pick, method, target, opacity], **common)
    method.change(lambda s, m, t, o: re_explain(ctx, s, m, t, o), [session, method, target, opacity], **common)
    target.input(lambda s, m, t, o: re_explain(ctx, s, m, t, o), [session, method, target, opacity], **common)
    opacity.release(reblend, [session, opacity], [cnn_img, vlm_img])
    tta.input(lambda s, t, m, g, o: toggle_tta(ctx, s, t, m, g, o), [session, tta, method, target, opacity], **common)
    cnn_dd.input(lambda k: target_choices(ctx, k), [cnn_dd], [target])
    send.click(lambda s: send_to_annotation(ctx, s), [session], [send_status])

    def _refresh():
        c, cd = model_choices(ctx, "cnn")
        v, vd = model_choices(ctx, "vlm")
        return gr.update(choices=c, value=cd), gr.update(choices=v, value=vd), unavailable_md(ctx)

    refresh.click(_refresh, None, [cnn_dd, vlm_dd, models_note])

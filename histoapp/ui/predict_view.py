"""The Predict tab's rendering: the model cards (probability bars, the answer or why there is none, trust
figures, timings, the heat-map overlay), the agreement line, the batch table and its CSV, from the tab's
``Session`` (the patches of the last request and what the models said: ``histoapp.models.uploads.Item``).
Plain functions of values, so tests read them without a browser."""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from histoapp.models.routing import AUTO
from histoapp.models.runner import domain_notes
from histoapp.models.uploads import UNKNOWN_MAG, Item, abstained
from histoapp.ui.context import AppContext
from histoapp.visitor_files import downloads_dir

OVERLAY_MIN_SIDE = 384  # px: the Predict overlays' shorter side on screen (small patches enlarged)
NO_MODEL = ""
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


@dataclass
class Session:
    items: list[Item] = field(default_factory=list)
    current: int = 0
    cnn_key: str = NO_MODEL
    vlm_key: str = NO_MODEL
    tta: bool = False  # the shown patch's uncertainty from 8 flips / rotations (8x the prediction time)


def display(image):
    """Small patches are enlarged for the screen (the heatmap is then resized onto the enlarged patch)."""
    from PIL import Image

    scale = OVERLAY_MIN_SIDE / min(image.size)
    return (
        image if scale <= 1 else image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    )


def _may_annotate(ctx: AppContext) -> bool:
    """Whether the request being served may send patches to the annotation queue (public visitors and viewers
    may not: the button is not offered to them)."""
    from histoapp.auth import at_least, current_request, role_of

    return at_least(role_of(ctx.settings, current_request()), "annotator")


def overlay_image(item: Item, pred, opacity: float):
    """The patch with the model's heat map; an abstaining model's map explains nothing, so the bare patch."""
    if item is None or item.image is None:
        return None
    if pred is None or pred.explanation is None or abstained(pred):
        return display(item.image)
    from histoapp.explain.overlay import overlay

    return overlay(display(item.image), pred.explanation.heatmap, float(opacity))


def domain_md(ctx: AppContext, attr: str, chosen: str, item: Item | None) -> str:
    """What the model that answered side ``attr`` was trained on, why Auto picked it, and why the patch lies
    outside its training images."""
    trained_on, warnings = domain_notes(ctx, item.key(attr, chosen) if item else chosen, item)
    if not trained_on:
        return ""
    route = [f"🧭 {item.routes[attr]}."] if item is not None and attr in item.routes else []
    return "\n\n".join(route + [f"*{trained_on}*"] + [f"⚠️ {w[0].upper()}{w[1:]}." for w in warnings])


def info(pred, plain_ms: float | None, what: str, domain: str = "", size: tuple[int, int] | None = None) -> str:
    """The model's answer (or why it abstains), what it was trained on (``domain``), trust figures, timings and
    what its heat map shows (for an image of ``size``: which part the model saw)."""
    from histoapp.models.domain import crop_note

    if pred is None:
        return ""
    if abstained(pred):
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
    if abstained(pred) and exp is not None:
        return text + "\n\n*No heat map shown: a model that abstains has nothing to explain.*"
    seen = crop_note(size) if size and exp is not None else ""
    explained = ". ".join(t for t in (exp.description if exp is not None else "", seen) if t)
    return text + (f"\n\n*{explained}*" if explained else "")


def label_update(pred, kind: str) -> dict:
    """The probability bars; an abstaining model's are dimmed and carry no headline label."""
    if pred is None:
        return gr.update(value=None, show_heading=True, elem_classes=[], label=f"{kind} prediction")
    off = abstained(pred)
    return gr.update(
        value=pred.scores,
        show_heading=not off,
        elem_classes=[ABSTAINED_CLASS] if off else [],
        label=f"{kind}: no answer (probabilities dimmed)" if off else f"{kind} prediction",
    )


def agreement(ctx: AppContext, session: Session) -> tuple[str, dict]:
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
        off = [kind for kind, pred in (("CNN", it.cnn), ("VLM", it.vlm)) if abstained(pred)]
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


def model_cells(pred) -> list:
    """label, P(malignant), ood_score, ood, abstain_reason of one model for the batch table."""
    if pred is None:
        return ["", None, None, "", ""]
    ood = getattr(pred, "ood", None)
    score = getattr(pred, "ood_score", None)
    return [
        NO_ANSWER if abstained(pred) else pred.label,
        round(pred.prob_malignant, 4),
        None if score is None else round(float(score), 4),
        "" if ood is None else ("yes" if ood else "no"),
        getattr(pred, "abstain_reason", None) or "",
    ]


def table_rows(session: Session) -> list[list]:
    rows = []
    for it in session.items:
        rows.append(
            [it.name, it.magnification or ""] + model_cells(it.cnn) + model_cells(it.vlm) + [it.agree_cell, it.error]
        )
    return rows


def view_rows(session: Session) -> list[list]:
    """The batch table on screen: label and P(malignant) per model, agreement, and in Notes why a model gave no
    answer (the short reason; the CSV has the full one) and any error."""
    from trainer.trust.abstain import CODES

    rows = []
    for it in session.items:
        notes = [
            f"{kind}: {CODES.get(pred.abstain, pred.abstain).split(' (')[0]}"
            for kind, pred in (("CNN", it.cnn), ("VLM", it.vlm))
            if abstained(pred)
        ] + ([it.error] if it.error else [])
        cells = []
        for pred in (it.cnn, it.vlm):
            cells += ["", None] if pred is None else [model_cells(pred)[0], round(pred.prob_malignant, 3)]
        rows.append([it.name, it.magnification or UNKNOWN_MAG, *cells, it.agree_cell, "; ".join(notes)])
    return rows


def write_csv(ctx: AppContext, session: Session) -> str:
    out = Path(tempfile.mkdtemp(prefix="predict-", dir=downloads_dir(ctx.settings))) / "predictions.csv"
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TABLE_COLUMNS + ["cnn_model", "vlm_model"])
        for it, row in zip(session.items, table_rows(session), strict=True):
            w.writerow(row + [it.key("cnn", session.cnn_key), it.key("vlm", session.vlm_key)])
    return str(out)


def faith_md(item: Item | None, attr: str) -> str:
    """The line under a map: its faithfulness score and what it means, or how to get it (nothing without a map)."""
    pred = getattr(item, attr) if item else None
    if pred is None or pred.explanation is None or abstained(pred):
        return ""
    f = item.map_score(attr)
    if f is None:
        return "<small>Faithfulness of this map: not checked yet (**Check the maps** below).</small>"
    return f"**Faithfulness {f.road_combined:+.2f}** (ROAD): {f.sentence()} <small>({f.seconds:.1f} s)</small>"


def errors_md(session: Session, extra: list[str] | None = None) -> str:
    lines = [f"- `{it.name}`: {it.error}" for it in session.items if it.error] + [f"- {e}" for e in extra or []]
    return ("#### ⚠️ Could not use\n" + "\n".join(lines)) if lines else ""


def answer(vlm) -> dict:
    """The VLM's free text; none from a VLM that abstains (its words would read as the answer it withholds)."""
    if abstained(vlm):
        return gr.update(value="", label="VLM answer (free text): none, the VLM abstains")
    return gr.update(value=(vlm.answer or "") if vlm else "", label="VLM answer (free text)")


def card_title(ctx: AppContext, key: str, kind: str) -> str:
    if not key:
        return f"#### {kind}: none selected"
    if key == AUTO:
        return f"#### {kind}: Auto (picked per image)"
    try:
        return f"#### {kind}: {ctx.registry.get(key).name}"
    except KeyError:
        return f"#### {kind}: {key}"


def render(ctx: AppContext, session: Session, opacity: float, extra_errors: list[str] | None = None) -> dict:
    """Every output of the tab from the session state, by name (the tab's ``outputs``)."""
    item = session.items[session.current] if session.items and 0 <= session.current < len(session.items) else None
    cnn = item.cnn if item else None
    vlm = item.vlm if item else None
    agree_text, send = agreement(ctx, session)
    many = len(session.items) > 1
    readable = [it.name for it in session.items if it.image is not None]
    size = item.image.size if item and item.image is not None else None
    return {
        "errors": errors_md(session, extra_errors),
        "cnn_title": card_title(ctx, (item and item.key("cnn", session.cnn_key)) or session.cnn_key, "CNN"),
        "cnn_label": label_update(cnn, "CNN"),
        "cnn_info": info(
            cnn, item.cnn_plain_ms if item else None, "CAM", domain_md(ctx, "cnn", session.cnn_key, item), size
        ),
        "cnn_img": overlay_image(item, cnn, opacity) if cnn else None,
        "vlm_title": card_title(ctx, (item and item.key("vlm", session.vlm_key)) or session.vlm_key, "VLM"),
        "vlm_label": label_update(vlm, "VLM"),
        "vlm_info": info(
            vlm, item.vlm_plain_ms if item else None, "attention", domain_md(ctx, "vlm", session.vlm_key, item), size
        ),
        "vlm_img": overlay_image(item, vlm, opacity) if vlm else None,
        "cnn_faith": faith_md(item, "cnn"),
        "vlm_faith": faith_md(item, "vlm"),
        "vlm_answer": answer(vlm),
        "agreement": agree_text,
        "send": send,
        "send_status": "",
        "table": gr.update(value=view_rows(session), visible=many),
        "csv": gr.update(value=write_csv(ctx, session) if many else None, visible=many),
        "pick": gr.update(
            choices=readable,
            value=item.name if item and item.image is not None else None,
            visible=many and len(readable) > 1,
        ),
        "session": session,
    }

"""What the Annotate tab shows, as plain functions of the store (testable without a browser): the image at a
zoom, its details (predictions hidden in blind mode), progress, the annotator's recent labels, agreement and
conflict tables; and the queue view's state (``View``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image

from histoapp.auth import user_of
from histoapp.store.fields import QUALITY_FLAGS
from histoapp.store.modes import BLIND_HIDES
from trainer.data.records import LABELS, SUBTYPE_NAMES, SUBTYPES

ANY = "any"  # a queue filter not set
FLAG_CHOICES = [(shown, flag) for flag, shown in QUALITY_FLAGS.items()]  # Gradio's (label, value) pairs
VIEWER_MIN_SIDE = 768  # px: the Annotate viewer's long side at least (small patches scaled up)
RECENT_COLUMNS = ["", "image", "label", "subtype", "flags", "note", "time"]  # "": the thumbnail
THUMB = 48  # px, the recent labels' thumbnails


def resolve_annotator(name: str | None, request=None) -> str:
    """The logged-in user when the app runs with auth (a password or Hugging Face login, ``auth.user_of``), else
    the name typed in the box."""
    return (user_of(request) or name or "").strip()


def _window(size, zoom, center) -> tuple[int, int, int, int]:
    """``(left, top, width, height)`` of the ``1/zoom`` window around ``center``, kept inside the image."""
    w, h = size
    zoom = max(1.0, float(zoom or 1))
    cx, cy = center or (0.5, 0.5)
    cw, ch = max(1, round(w / zoom)), max(1, round(h / zoom))
    return min(max(0, round(cx * w - cw / 2)), w - cw), min(max(0, round(cy * h - ch / 2)), h - ch), cw, ch


def zoomed(img: Image.Image, zoom: float, center: tuple[float, float] | None) -> Image.Image:
    """The ``1/zoom`` window of ``img`` around ``center`` (fractions of width, height), scaled back up so the
    viewer shows tissue detail instead of a tiny crop."""
    if max(1.0, float(zoom or 1)) == 1:
        return img
    left, top, cw, ch = _window(img.size, zoom, center)
    return img.crop((left, top, left + cw, top + ch)).resize(img.size, Image.LANCZOS)


def click_to_center(size, zoom, center, xy) -> tuple[float, float]:
    """A click at pixel ``xy`` of the displayed (zoomed) image, as a centre in fractions of the full image."""
    left, top, cw, ch = _window(size, zoom, center)
    w, h = size
    return ((left + xy[0] / w * cw) / w, (top + xy[1] / h * ch) / h)


def label_text(label, subtype) -> str:
    if label is None:
        return "—"
    return LABELS[label] + (f" · {SUBTYPE_NAMES[subtype].replace('_', ' ')} ({subtype})" if subtype else "")


def undo_text(action: str, res: dict) -> str:
    """What an undo / redo (``Store.undo``'s result) did, for the status line."""
    state = res["state"]
    if res["table"] == "map_ratings":
        what = (
            "removed the map rating"
            if state is None
            else f"map rating is now **{state['rating']}/5** ({state['method']})"
        )
    elif state is None:
        what = "removed the label"
    else:
        what = f"label is now **{label_text(state['label'], state.get('subtype'))}**"
    return f"{action.capitalize()}: image #{res['image_id']} — {what}."


def details(store, image_id: int, annotator: str, *, blind: bool) -> str:
    """Markdown about one image: where it comes from, this annotator's label, and (unless blind) the
    models' predictions and the source's label."""
    info = store.image(image_id)
    lines = [
        f"**Image #{image_id}** · {info['dataset']} · {info['magnification'] or 'magnification unknown'}"
        + (f" · patient {info['patient_id']}" if info["patient_id"] else ""),
        f"`{info['path']}`",
    ]
    mine = store.annotations(image_id=image_id, annotator=annotator) if annotator else []
    if mine:
        a = mine[0]
        flags = [t for t, k in FLAG_CHOICES if a[k]]
        lines.append(
            f"Your label: **{label_text(a['label'], a['subtype'])}**"
            + (f" · flags: {', '.join(flags)}" if flags else "")
            + (f" · note: {a['note']}" if a["note"] else "")
        )
    else:
        lines.append("Your label: *not labelled yet*")
    if blind:
        lines.append(f"*Blind mode: {BLIND_HIDES} are hidden.*")
    else:
        preds = store.predictions(image_id)
        if preds:
            lines.append(
                "Models: "
                + "; ".join(
                    f"{p['model']} ({p['kind']}): {LABELS[p['label']]} (p malignant {p['prob_malignant']:.2f})"
                    for p in preds
                )
            )
        else:
            lines.append("Models: *no predictions stored for this image*")
        if info["source_label"] is not None:
            lines.append(f"Source label: {label_text(info['source_label'], info['source_subtype'])}")
    return "\n\n".join(lines)


def viewer_content(store, image_id: int, annotator: str, *, blind: bool, zoom=1, center=None):
    """``(image or None, markdown)`` for the viewer. A file gone from disk shows no image and a warning first;
    the image's labels are untouched."""
    img, problem = store.load_image(image_id)
    text = details(store, image_id, annotator, blind=blind)
    if problem:
        return None, f"⚠️ **{problem}**\n\n{text}"
    return for_display(zoomed(img, zoom, center)), text


def for_display(img: Image.Image, min_side: int = VIEWER_MIN_SIDE) -> Image.Image:
    """Small patches scaled up (display only) so the viewer is large; big ones are left to the browser."""
    long_side = max(img.size)
    if long_side >= min_side:
        return img
    f = min_side / long_side
    return img.resize((round(img.width * f), round(img.height * f)), Image.LANCZOS)


def progress_text(p: dict, annotator: str) -> str:
    if not p["images"]:
        return "**No images yet** — import a folder below (or make demo patches)."
    who = (
        f"**{annotator}**: {p['mine']} done, {p['left']} left"
        if annotator
        else f"{p['labelled']} labelled, {p['left']} left"
    )
    return (
        f"{who} · {p['images']} images in this view, {p['labelled']} labelled by anyone, "
        f"{p['conflicts']} conflict(s) to adjudicate"
    )


def _thumbnail(store, image_id: int) -> str:
    """A small inline PNG of the image (``<img>``), or a dash when its file is gone."""
    import base64
    import io

    img, _ = store.load_image(image_id)
    if img is None:
        return "—"
    img = img.copy()
    img.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return f"<img alt='' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def recent_table(store, annotator: str) -> str:
    """The annotator's latest labels as an HTML table: a thumbnail and the file's name beside each label, so an
    image is recognised without knowing its id (every text escaped: a note is the annotator's own words)."""
    from html import escape

    rows = store.recent(annotator) if annotator else []
    if not rows:
        return "<p><em>No labels yet.</em></p>"
    cells = [
        [
            _thumbnail(store, r["image_id"]),
            f"{escape(Path(r['path']).name)} <small>(#{r['image_id']})</small>",
            escape(LABELS[r["label"]]),
            escape(r["subtype"] or ""),
            escape(", ".join(t for t, k in FLAG_CHOICES if r[k])),
            escape(r["note"] or ""),
            escape(r["updated_at"][:19].replace("T", " ")),
        ]
        for r in rows
    ]
    head = "".join(f"<th>{escape(c)}</th>" for c in RECENT_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells)
    return f"<table class='ann-recent'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def agreement_tables(store) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    res = store.agreement()
    cols = ["rater A", "rater B", "images", "raw agreement", "kappa"]
    pairs = pd.DataFrame(
        [[p["a"], p["b"], p["n"], _fmt(p["agreement"]), _fmt(p["kappa"])] for p in res["pairs"]], columns=cols
    )
    models = pd.DataFrame(
        [[p["a"], p["b"], p["n"], _fmt(p["agreement"]), _fmt(p["kappa"])] for p in res["models"]], columns=cols
    )
    f = res["fleiss"]
    head = f"Annotators: {', '.join(res['annotators']) or 'none yet'}. "
    if f:
        head += f"Fleiss' kappa over the {f['n_images']} images all {f['raters']} annotators labelled: **{_fmt(f['kappa'])}**."
    else:
        head += "Fleiss' kappa needs at least 2 annotators who labelled the same 2+ images."
    head += " Cohen's kappa per pair on the images both labelled (— where undefined: too few images or one class only)."
    return head, pairs, models


def conflicts_table(store) -> pd.DataFrame:
    rows = store.conflicts(include_resolved=True)
    return pd.DataFrame(
        [
            [
                c["image_id"],
                c["kind"],
                "; ".join(f"{k}: {v}" for k, v in c["votes"].items()),
                label_text(c["adjudication"]["label"], c["adjudication"]["subtype"])
                + f" by {c['adjudication']['adjudicator']}"
                if c["adjudication"]
                else "open",
            ]
            for c in rows
        ],
        columns=["image", "disagreement on", "votes", "final label"],
    )


SUBTYPE_BUTTONS = [(str(k + 1), code, SUBTYPE_NAMES[code].replace("_", " ")) for k, code in enumerate(SUBTYPES)]


@dataclass
class View:
    """The queue view, one ``gr.State``: who labels (the Annotator box), which queue and filters, how the patch is
    shown, and what is on screen. Each event works on a copy with the controls' values as the page sent them
    (``_viewing``), like the separate inputs it replaces."""

    name: str | None = ""  # the Annotator box (a login overrides it: ``view.resolve_annotator``)
    mode: str = "mine"
    magnification: str | None = ANY
    dataset: str | None = ANY
    blind: bool = False
    zoom: int = 1
    current: int | None = None  # image id on screen
    skipped: list[int] = field(default_factory=list)  # skipped in this session
    center: tuple[float, float] | None = None  # zoom centre (fractions)

    @property
    def filters(self) -> tuple[str | None, str | None]:
        """(magnification, dataset) of the queue; None: any."""
        return (None if self.magnification in (None, "", ANY) else self.magnification), (
            None if self.dataset in (None, "", ANY) else self.dataset
        )


CONTROLS = ("name", "mode", "magnification", "dataset", "blind", "zoom")  # the view's inputs, then its state

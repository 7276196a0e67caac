"""Uploaded patches: read defensively (type, size, the public demo's pixel budget, decode), kept under
data_dir/uploads for the annotation queue, and what the models said about each (``Item``). The Predict tab and
the API read uploads here."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from histoapp.models.routing import AUTO
from histoapp.public import pixel_budget

ACCEPTED = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MAX_BATCH = 200  # patches per request: bounds memory and queue time
UNKNOWN_MAG = "unknown"  # the magnification tag's "not said" (the Predict tab's choice, the batch table's cell)


def abstained(pred) -> bool:
    """The model withheld its answer (``trainer.trust``: not tissue, out of distribution, uncertain)."""
    return getattr(pred, "abstain", None) is not None


def answered(pred) -> bool:
    return pred is not None and not abstained(pred)


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
    # "cnn" / "vlm" -> (the explanation scored, its trainer.explain.faithfulness.Faithfulness): ``map_score``
    scores: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)  # "cnn" / "vlm" -> the model that answered (Auto's pick included)
    routes: dict = field(default_factory=dict)  # "cnn" / "vlm" -> why Auto picked that model (histoapp.models.routing)

    def key(self, attr: str, chosen: str | None) -> str | None:
        """The model that answers ``attr`` for this patch: the ``chosen`` one, or under Auto the one picked for it."""
        return self.keys.get(attr) if chosen == AUTO else chosen

    def map_score(self, attr: str):
        """The faithfulness score of the map on screen for ``attr`` ("cnn" / "vlm"), None until checked: a score
        belongs to the explanation it was measured on, so a new map (another method, another patch) has none."""
        pred, got = getattr(self, attr), self.scores.get(attr)
        return got[1] if got and pred is not None and got[0] is pred.explanation else None

    @property
    def compared(self) -> bool:
        """Both models answered (a model that abstains, for any reason, has no label to agree or disagree with)."""
        return answered(self.cnn) and answered(self.vlm)

    @property
    def disagree(self) -> bool:
        """Both models answered and their labels differ."""
        return self.compared and self.cnn.label != self.vlm.label

    @property
    def agree_cell(self) -> str:
        """The batch table's and CSV's agreement: yes / no, empty unless both models answered."""
        return ("no" if self.disagree else "yes") if self.compared else ""


def upload_paths(files) -> list[str]:
    """The paths of what Gradio's File box gives (one file or a list; temp-file objects or paths)."""
    if not files:
        return []
    files = files if isinstance(files, (list, tuple)) else [files]
    return [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files]


def magnification_tag(value: str | None) -> str | None:
    """A chosen magnification as the records spell it (``40X`` ...); None for none / "unknown"."""
    from trainer.data.records import normalise_magnification

    return None if value in (None, "", UNKNOWN_MAG) else normalise_magnification(value)


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

    name = Path(path).name  # Gradio keeps the original file name as the last path component of its temp copy
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

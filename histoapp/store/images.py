"""Images into the store: checked, known by their content hash (the same bytes are one image however often they
arrive), optionally copied into the app's uploads folder first; and one image's row and pixels back out."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from sqlalchemy import select

from histoapp.store.audit import create_audited, update_audited
from histoapp.store.errors import StoreError
from histoapp.store.fields import check_id, check_text
from histoapp.store.labels import add_prediction, label_and_subtype
from histoapp.store.models import Image, row_dict, utcnow
from trainer.data.images import ImageError, load_rgb, probe
from trainer.data.records import normalise_magnification


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _keep_copy(path: Path, digest: str, copy_to) -> Path:
    dest = Path(copy_to) / digest[:2] / f"{digest}{path.suffix.lower()}"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest.with_suffix(".part"))
        dest.with_suffix(".part").replace(dest)
    return dest


def _prepare(it: dict, *, copy_to, verify: bool) -> tuple[str, dict]:
    """``(content hash, Image columns)`` for one item, every check done before the write transaction opens."""
    path = Path(it["path"])
    if verify:
        try:
            probe(path)
        except ImageError as exc:
            raise StoreError(str(exc)) from None
    elif not path.is_file():
        raise StoreError(f"{path}: file not found")
    digest = file_sha256(path)
    if copy_to is not None:
        path = _keep_copy(path, digest, copy_to)
    src_label = src_sub = None
    if it.get("label") is not None or it.get("subtype"):
        src_label, src_sub = label_and_subtype(it.get("label"), it.get("subtype"))
    try:
        mag = normalise_magnification(it.get("magnification"))
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    patient = it.get("patient_id")
    return digest, dict(
        path=str(path.resolve()),
        dataset=check_text(it.get("dataset") or "upload", "dataset name", 64),
        magnification=mag,
        patient_id=None if patient is None else check_text(patient, "patient id", 128),
        source_label=src_label,
        source_subtype=src_sub,
    )


def add_images(store, items: list[dict], *, copy_to=None, verify: bool = True, actor: str = "system"):
    """Add many images in one transaction; returns ``(image_id, added)`` per item (False: a duplicate).
    Item keys: path, dataset, magnification, patient_id, label, subtype (the source's labels, kept apart from
    annotations). ``copy_to``: copy each file there first (uploads whose temporary file will vanish)."""
    prepared = [_prepare(it, copy_to=copy_to, verify=verify) for it in items]
    out = []
    with store.write() as s:
        for digest, fields in prepared:
            img = s.scalar(select(Image).where(Image.sha256 == digest))
            if img is None:
                img = create_audited(s, actor, Image(sha256=digest, added_at=utcnow(), **fields)).row
                out.append((img.id, True))
                continue
            if img.path != fields["path"] and not Path(img.path).exists():
                # The file moved (or was restored elsewhere): point at the copy that exists.
                update_audited(s, actor, img, dict(path=fields["path"]))
            out.append((img.id, False))
    return out


def send_to_queue(
    store, path, *, uploads_dir, predictions=(), dataset="upload", magnification=None, actor="system"
) -> int:
    """For the Predict tab: keep a copy of an uploaded image (its temporary file will vanish) under
    ``uploads_dir``, queue it, and attach the models' predictions (dicts with model, prob_malignant, label and
    optionally kind). The same bytes again return the same id."""
    item = dict(path=path, dataset=dataset, magnification=magnification)
    image_id = add_images(store, [item], copy_to=uploads_dir, actor=actor)[0][0]
    for p in predictions:
        add_prediction(
            store,
            image_id,
            model=p["model"],
            prob_malignant=p["prob_malignant"],
            label=p["label"],
            kind=p.get("kind"),
            actor=actor,
        )
    return image_id


def image(store, image_id: int) -> dict:
    image_id = check_id(image_id)
    with store.read() as s:
        img = s.get(Image, image_id)
        if img is None:
            raise StoreError(f"no image with id {image_id}")
        return row_dict(img)


def load_image(store, image_id: int):
    """``(PIL image or None, message)``: a missing or unreadable file gives None and a message saying so (the
    image's annotations are untouched)."""
    info = image(store, image_id)
    try:
        return load_rgb(info["path"]), ""
    except ImageError as exc:
        return None, (
            f"Image #{image_id} cannot be shown: {exc.reason} ({info['path']}). Its annotations are kept; "
            "restore the file or import it again from its new place."
        )

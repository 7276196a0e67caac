"""Which image to label next: queue modes (unlabelled, CNN/VLM disagreement, most uncertain first, ...) with
magnification and dataset filters, and progress counts. Every query selects image ids, so an image is in a
queue once however often its bytes were imported (``Image.sha256`` is unique)."""

from __future__ import annotations

from sqlalchemy import distinct, exists, func, select

from histoapp.store.errors import StoreError
from histoapp.store.fields import check_id
from histoapp.store.models import Adjudication, Annotation, Image, Prediction
from histoapp.store.modes import MODES
from trainer.trust.abstain import uncertainty


def _filters(q, magnification, dataset, exclude):
    if magnification:
        q = q.where(Image.magnification == magnification)
    if dataset:
        q = q.where(Image.dataset == dataset)
    if exclude:
        q = q.where(Image.id.notin_([check_id(i) for i in exclude]))
    return q


def _mine(annotator):
    return exists().where(Annotation.image_id == Image.id, Annotation.annotator == annotator)


def _kind_mean(kind: str):
    return (
        select(Prediction.image_id, func.avg(Prediction.prob_malignant).label("p"))
        .where(Prediction.kind == kind)
        .group_by(Prediction.image_id)
        .subquery()
    )


def conflict_ids():
    """Images whose annotators gave different labels and that no adjudication settled."""
    return (
        select(Annotation.image_id)
        .group_by(Annotation.image_id)
        .having(func.count(distinct(Annotation.label)) > 1)
        .where(~exists().where(Adjudication.image_id == Annotation.image_id))
    )


def queue(
    store,
    annotator: str | None,
    *,
    mode: str = "unlabelled",
    magnification: str | None = None,
    dataset: str | None = None,
    exclude=(),
    limit: int | None = 100,
) -> list[int]:
    """Image ids in the order to label them. Modes other than "all" and "conflicts" leave out images the
    ``annotator`` already labelled; ``exclude``: ids to leave out too (e.g. skipped this session)."""
    if mode not in MODES:
        raise StoreError(f"unknown queue {mode!r}; expected one of {', '.join(MODES)}")
    q = select(Image.id)
    if mode == "unlabelled":
        q = q.where(~exists().where(Annotation.image_id == Image.id)).order_by(Image.id)
    elif mode == "mine":
        q = q.order_by(Image.id)
    elif mode == "disagreement":
        cnn, vlm = _kind_mean("cnn"), _kind_mean("vlm")
        q = (
            q.join(cnn, cnn.c.image_id == Image.id)
            .join(vlm, vlm.c.image_id == Image.id)
            .where((cnn.c.p >= 0.5) != (vlm.c.p >= 0.5))
            .order_by(func.abs(cnn.c.p - vlm.c.p).desc(), Image.id)
        )
    elif mode == "uncertain":
        mean = (
            select(Prediction.image_id, func.avg(Prediction.prob_malignant).label("p"))
            .group_by(Prediction.image_id)
            .subquery()
        )
        # The abstention rule's own uncertainty score (trainer.trust.abstain), on the stored calibrated P(malignant).
        q = q.join(mean, mean.c.image_id == Image.id).order_by(uncertainty(mean.c.p, func.abs).desc(), Image.id)
    elif mode == "conflicts":
        q = q.where(Image.id.in_(conflict_ids())).order_by(Image.id)
    else:
        q = q.order_by(Image.id)
    if annotator and mode not in ("all", "conflicts"):
        q = q.where(~_mine(annotator))
    q = _filters(q, magnification, dataset, exclude)
    if limit:
        q = q.limit(limit)
    with store.read() as s:
        return list(s.scalars(q))


def progress(
    store, annotator: str | None = None, *, magnification: str | None = None, dataset: str | None = None
) -> dict:
    """Counts for the progress line: images, labelled by anyone, by ``annotator``, left for them, conflicts."""
    base = _filters(select(Image.id), magnification, dataset, ())
    ids = base.subquery()
    with store.read() as s:
        total = s.scalar(select(func.count()).select_from(ids))
        labelled = s.scalar(
            select(func.count(distinct(Annotation.image_id))).where(Annotation.image_id.in_(select(ids.c.id)))
        )
        mine = (
            s.scalar(
                select(func.count(distinct(Annotation.image_id))).where(
                    Annotation.image_id.in_(select(ids.c.id)), Annotation.annotator == annotator
                )
            )
            if annotator
            else 0
        )
        conflicts = s.scalar(
            select(func.count()).select_from(conflict_ids().where(Annotation.image_id.in_(select(ids.c.id))).subquery())
        )
        annotations = s.scalar(select(func.count(Annotation.id)).where(Annotation.image_id.in_(select(ids.c.id))))
    return {
        "images": total,
        "labelled": labelled,
        "annotations": annotations,
        "mine": mine,
        "left": total - (mine if annotator else labelled),
        "conflicts": conflicts,
    }


def datasets(store) -> list[str]:
    with store.read() as s:
        return list(s.scalars(select(Image.dataset).distinct().order_by(Image.dataset)))

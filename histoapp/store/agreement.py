"""Agreement between annotators (Cohen's kappa per pair via scikit-learn, Fleiss' kappa via statsmodels) and
with the models and the source labels; between raters of explanation maps (the same pairwise kappa, quadratic
weights for the ordinal 1-5 ratings); conflicts for adjudication; the consensus label of each image."""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from itertools import combinations

import numpy as np
from sqlalchemy import select

from histoapp.store.fields import MAP_RATINGS
from histoapp.store.models import Adjudication, Annotation, Image, MapRating, Prediction, row_dict
from trainer.data.records import LABELS

BINARY = {"labels": [0, 1]}  # benign / malignant: plain Cohen's kappa
ORDINAL = {"labels": sorted(MAP_RATINGS), "weights": "quadratic"}  # 1-5 ratings: near misses count partly


def _kappa(a: list[int], b: list[int], scale: dict = BINARY) -> float | None:
    """Cohen's kappa (``scale``: its labels and weights), or None where it is undefined (fewer than 2 items, or one
    constant rater set)."""
    if len(a) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score  # imported on use: keeps opening the store light

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns and returns nan when chance agreement is 1
        k = float(cohen_kappa_score(a, b, **scale))
    return None if math.isnan(k) else k


def _pair(name_a: str, name_b: str, la: dict, lb: dict, scale: dict = BINARY) -> dict:
    common = sorted(set(la) & set(lb))
    a, b = [la[i] for i in common], [lb[i] for i in common]
    agree = sum(x == y for x, y in zip(a, b, strict=True))
    return {
        "a": name_a,
        "b": name_b,
        "n": len(common),
        "agreement": agree / len(common) if common else None,
        "kappa": _kappa(a, b, scale),
    }


def _labels_by(store) -> tuple[dict[str, dict[int, int]], dict[str, dict[int, int]], dict[int, int]]:
    with store.read() as s:
        ann = s.execute(select(Annotation.annotator, Annotation.image_id, Annotation.label)).all()
        pred = s.execute(select(Prediction.model, Prediction.image_id, Prediction.label)).all()
        ref = s.execute(select(Image.id, Image.source_label).where(Image.source_label.is_not(None))).all()
    by_annotator: dict[str, dict[int, int]] = defaultdict(dict)
    for who, img, lab in ann:
        by_annotator[who][img] = lab
    by_model: dict[str, dict[int, int]] = defaultdict(dict)
    for model, img, lab in pred:
        by_model[model][img] = lab
    return dict(by_annotator), dict(by_model), {i: lab for i, lab in ref}


def agreement(store) -> dict:
    """``pairs``: Cohen's kappa per annotator pair on the images both labelled; ``fleiss``: Fleiss' kappa over
    the images every annotator labelled (None with fewer than 2 annotators or fewer than 2 such images);
    ``models``: each annotator against each model's predicted label and against the source's label."""
    annotators, models, reference = _labels_by(store)
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    names = sorted(annotators)
    pairs = [_pair(a, b, annotators[a], annotators[b]) for a, b in combinations(names, 2)]
    fleiss = None
    if len(names) >= 2:
        common = sorted(set.intersection(*(set(annotators[n]) for n in names)))
        if len(common) >= 2:
            table, _ = aggregate_raters(np.array([[annotators[n][i] for n in names] for i in common]), n_cat=2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                k = float(fleiss_kappa(table, method="fleiss"))
            fleiss = {"kappa": None if math.isnan(k) else k, "n_images": len(common), "raters": len(names)}
    vs = [_pair(a, f"model: {m}", annotators[a], models[m]) for a in names for m in sorted(models)]
    if reference:
        vs += [_pair(a, "source label", annotators[a], reference) for a in names]
    return {"annotators": names, "pairs": pairs, "fleiss": fleiss, "models": [v for v in vs if v["n"]]}


def rating_agreement(store) -> dict:
    """Agreement of raters of explanation maps: per rater pair, over the maps (image, model, method) both rated,
    exact agreement and Cohen's kappa with quadratic weights (ordinal 1-5); ``mean_kappa`` over the pairs where
    it is defined."""
    with store.read() as s:
        rows = s.execute(
            select(MapRating.rater, MapRating.image_id, MapRating.model, MapRating.method, MapRating.rating)
        )
        by_rater: dict[str, dict[tuple, int]] = defaultdict(dict)
        for rater, image_id, model, method, rating in rows:
            by_rater[rater][(image_id, model, method)] = rating
    names = sorted(by_rater)
    pairs = [_pair(a, b, by_rater[a], by_rater[b], ORDINAL) for a, b in combinations(names, 2)]
    kappas = [p["kappa"] for p in pairs if p["kappa"] is not None]
    return {
        "raters": names,
        "ratings": sum(len(r) for r in by_rater.values()),
        "pairs": pairs,
        "mean_kappa": float(np.mean(kappas)) if kappas else None,
    }


def _votes(store):
    with store.read() as s:
        anns = s.scalars(select(Annotation).order_by(Annotation.image_id, Annotation.annotator)).all()
        adj = {a.image_id: row_dict(a) for a in s.scalars(select(Adjudication))}
        paths = dict(s.execute(select(Image.id, Image.path)).all())
    votes: dict[int, list[Annotation]] = defaultdict(list)
    for a in anns:
        votes[a.image_id].append(a)
    return votes, adj, paths


def _vote_text(a) -> str:
    return LABELS[a.label] + (f" / {a.subtype}" if a.subtype else "")


def conflicts(store, *, include_resolved: bool = False) -> list[dict]:
    """Images whose annotators disagree on the label (``kind`` "label") or only on the subtype ("subtype"),
    with each vote and the adjudication if one was made."""
    votes, adj, paths = _votes(store)
    out = []
    for image_id, anns in votes.items():
        labels = {a.label for a in anns}
        subs = {a.subtype for a in anns if a.subtype}
        kind = "label" if len(labels) > 1 else "subtype" if len(subs) > 1 else None
        if kind is None or (image_id in adj and not include_resolved):
            continue
        out.append(
            {
                "image_id": image_id,
                "path": paths[image_id],
                "kind": kind,
                "votes": {a.annotator: _vote_text(a) for a in anns},
                "adjudication": adj.get(image_id),
            }
        )
    return out


def consensus(store, *, min_annotators: int = 1) -> dict[int, dict]:
    """The label each image gets in an export: the adjudication when there is one, else the annotators'
    label when they all agree (at least ``min_annotators`` of them); the subtype likewise when every given
    subtype agrees. Images in conflict are left out until adjudicated."""
    votes, adj, _ = _votes(store)
    out = {}
    for image_id in sorted(set(votes) | set(adj)):
        anns = votes.get(image_id, [])
        ids = [a.id for a in anns]
        if image_id in adj:
            a = adj[image_id]
            out[image_id] = {
                "label": a["label"],
                "subtype": a["subtype"],
                "rule": "adjudicated",
                "annotation_ids": ids,
                "adjudication_id": a["id"],
            }
            continue
        labels = {a.label for a in anns}
        subs = {a.subtype for a in anns if a.subtype}
        if len(anns) < max(1, min_annotators) or len(labels) != 1:
            continue
        out[image_id] = {
            "label": labels.pop(),
            "subtype": subs.pop() if len(subs) == 1 else None,
            "rule": "unanimous" if len(anns) > 1 else "single",
            "annotation_ids": ids,
            "adjudication_id": None,
        }
    return out

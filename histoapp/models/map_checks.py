"""Checking an explanation map (issue 27): its faithfulness score (``trainer.explain.faithfulness.score_map``: how
much P(malignant) drops when the part of the patch the map marks is removed, against the part it leaves), run
where the model lives (``histoapp.models.calls``), on demand: a plain prediction does none of this work.

The Predict tab checks the maps already on screen (``check_maps``: the score is kept on the ``Item``); the
Annotate tab draws a map of a stored image and scores it in one call (``map_with_score``), so a rating is stored
with the score of the very map the rater saw."""

from __future__ import annotations

from histoapp.models.calls import ModelContext, explain_cnn_images, explain_vlm_images, models_call
from histoapp.models.uploads import Item, abstained

VLM_METHOD = "attention"  # the VLM's map: label-token attention (the method a rating of it records)


def _method(attr: str, cnn_method: str) -> str:
    return cnn_method if attr == "cnn" else VLM_METHOD


def score(ctx: ModelContext, key: str, image, explanation, method: str):
    """The faithfulness of ``explanation`` (of ``image`` by model ``key``, made with ``method``), measured on the
    class the map explains."""
    return models_call(ctx, "faithfulness", key, image, explanation.heatmap, method, explanation.target)


def check_maps(ctx: ModelContext, item: Item, keys: dict[str, str | None], method: str, errors: list[str]) -> None:
    """The faithfulness of each map shown for ``item`` (the CNN's ``method`` map, the VLM's attention), kept on the
    item (``Item.map_score``); a map already scored is not scored again, an abstaining model's is not shown."""
    for attr, kind in (("cnn", "CNN"), ("vlm", "VLM")):
        key, pred = item.key(attr, keys.get(attr)), getattr(item, attr)
        if not key or pred is None or pred.explanation is None or abstained(pred) or item.map_score(attr):
            continue
        try:
            item.scores[attr] = (pred.explanation, score(ctx, key, item.image, pred.explanation, _method(attr, method)))
        except Exception as exc:  # a failing check must not take the page down; say what happened
            errors.append(f"{kind} map check failed for `{item.name}`: {exc.__class__.__name__}: {exc}")


def map_with_score(ctx: ModelContext, key: str, family: str, image, method: str):
    """``(prediction with its map, faithfulness)`` of ``image`` by model ``key`` (``family`` "cnn": the CAM
    ``method``; "vlm": attention). The score is None when the model abstains (its map explains nothing)."""
    (pred,) = (
        explain_cnn_images(ctx, key, [image], method) if family == "cnn" else explain_vlm_images(ctx, key, [image])
    )
    if abstained(pred) or pred.explanation is None:
        return pred, None
    return pred, score(ctx, key, image, pred.explanation, _method(family, method))

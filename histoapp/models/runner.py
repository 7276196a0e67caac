"""The Predict runner: what the Predict tab and the API do with uploaded patches (``histoapp.models.uploads``)
and the chosen models, through ``histoapp.models.calls``. The tab renders what this leaves on each ``Item``;
the API turns it into JSON. A failing model is said in ``errors`` (a list of lines) where the caller gives one,
so the page keeps working; without one, the exception goes to the caller."""

from __future__ import annotations

from histoapp.models.calls import (
    ModelContext,
    classify_images,
    explain_cnn_images,
    explain_vlm_images,
    models_call,
    tta_images,
)
from histoapp.models.routing import AUTO, AUTO_LABEL, Router, offered
from histoapp.models.uploads import Item, abstained

SIDES = (("cnn", "CNN"), ("vlm", "VLM"))  # Item attribute and what the page calls each model
DEFAULT_CAM = "Grad-CAM"  # the API's explanation (the tab lets the user pick)


def _failed(errors: list[str] | None, what: str, exc: Exception) -> None:
    if errors is None:
        raise exc
    errors.append(f"{what}: {exc.__class__.__name__}: {exc}")


def model_choices(ctx: ModelContext, family: str, auto: bool = False) -> tuple[list[tuple[str, str]], str | None]:
    """Dropdown choices (label, key) for a family: available models first; the demo model is the default. With
    ``auto`` (Predict) and two or more models trained here, "Auto" comes first and is the default."""
    entries = ctx.registry.list(family)
    usable = [(e.label, e.key) for e in entries if e.available]
    if auto and offered(entries):
        return [(AUTO_LABEL, AUTO), *usable], AUTO
    return usable, ctx.registry.default_key(family)


def _route(ctx: ModelContext, items: list[Item], attr: str, key: str) -> dict[str, list[Item]]:
    """The items each model answers for side ``attr``: all of them for a chosen ``key``; under Auto, each to the
    model it lies nearest (``histoapp.models.routing``), the reason kept on the item."""
    groups: dict[str, list[Item]] = {}
    router = Router(ctx.registry, attr) if key == AUTO else None
    for it in items:
        if router is not None:
            picked, it.routes[attr] = router.pick(it.image.size, it.magnification)
        else:
            picked = key
            it.routes.pop(attr, None)
        it.keys[attr] = picked
        if picked:
            groups.setdefault(picked, []).append(it)
    return groups


def predict_items(
    ctx: ModelContext, items: list[Item], keys: dict[str, str | None], explain: bool = False, errors=None
) -> None:
    """Each readable item's prediction by each model of ``keys`` ({"cnn": key, "vlm": key}; a missing or empty
    key: that model is not run), one batched pass per model; ``explain``: with each model's heat map (the
    CNN's Grad-CAM, the VLM's attention) from the same pass."""
    readable = [it for it in items if it.image is not None]
    for attr, kind in SIDES:
        key = keys.get(attr)
        if not key or not readable:
            continue
        for model, group in _route(ctx, readable, attr, key).items():
            ims = [it.image for it in group]
            try:
                if not explain:
                    preds = classify_images(ctx, model, ims)
                elif attr == "cnn":
                    preds = explain_cnn_images(ctx, model, ims, DEFAULT_CAM)
                else:
                    preds = explain_vlm_images(ctx, model, ims)
            except Exception as exc:
                _failed(errors, f"{kind} prediction failed", exc)
                continue
            for it, pred in zip(group, preds, strict=True):
                setattr(it, attr, pred)
                if not explain:
                    setattr(it, f"{attr}_plain_ms", pred.latency_ms)


def explain_cnn(ctx: ModelContext, item: Item, key: str, method: str, target: str | None, errors: list[str]) -> None:
    """The CNN's prediction of ``item`` with its CAM (``method``, of class ``target``)."""
    key = item.key("cnn", key)
    if not key or item.image is None:
        return
    try:
        (item.cnn,) = explain_cnn_images(ctx, key, [item.image], method, target)
    except Exception as exc:  # a model failing must not take the app down; say what happened
        _failed(errors, f"CNN explanation failed for `{item.name}`", exc)


def explain_item(
    ctx: ModelContext,
    item: Item,
    keys: dict[str, str | None],
    method: str,
    target: str | None,
    tta: bool,
    errors: list[str],
) -> None:
    """The shown patch in full: the CNN's CAM, the VLM's attention and free-text answer, and with ``tta`` the
    spread of P(malignant) over its 8 flips / rotations."""
    if item.image is None:
        return
    explain_cnn(ctx, item, keys.get("cnn"), method, target, errors)
    vlm = item.key("vlm", keys.get("vlm"))
    if vlm:
        try:
            (pred,) = explain_vlm_images(ctx, vlm, [item.image])
            # An abstaining VLM's free text is not shown: not worth its generation time either.
            item.vlm = pred if abstained(pred) else models_call(ctx, "answer_vlm", vlm, item.image, pred)
        except Exception as exc:
            _failed(errors, f"VLM explanation failed for `{item.name}`", exc)
    if tta:
        add_tta(ctx, item, keys, errors)


def add_tta(ctx: ModelContext, item: Item, keys: dict[str, str | None], errors: list[str]) -> None:
    """The patch's spread of P(malignant) over its 8 flips / rotations, and what it cost."""
    for attr, kind in SIDES:
        key, pred = item.key(attr, keys.get(attr)), getattr(item, attr)
        if not key or pred is None:
            continue
        try:
            (spread,) = tta_images(ctx, key, [item.image])
        except Exception as exc:
            _failed(errors, f"{kind} test-time augmentation failed for `{item.name}`", exc)
            continue
        pred.tta, pred.extra["tta_ms"] = spread.tta, spread.extra["tta_ms"]


def domain_notes(ctx: ModelContext, key: str | None, item: Item | None) -> tuple[str, list[str]]:
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

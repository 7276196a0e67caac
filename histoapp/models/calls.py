"""Where a model operation runs (``histoapp.models.ops``): on ZeroGPU through ``spaces.GPU`` per request, else in
the model worker when the app has one (``launch()``) or in this process, with concurrent requests' patches
batched together (``histoapp.models.batcher``). The Predict tab and the API both call these; the caller's role
and rate were checked before.

``ctx`` is any object with ``settings``, ``registry`` (``ModelRegistry``) and ``models`` (``LocalModels`` or the
worker client): the app's ``AppContext``, or a test's namespace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from histoapp.models.zerogpu import ZEROGPU, gpu


class ModelContext(Protocol):
    """What a model call needs of the app context."""

    settings: Any
    registry: Any  # histoapp.models.registry.ModelRegistry
    models: Any  # histoapp.models.ops.LocalModels or histoapp.models.worker_client.ModelWorker


# ZeroGPU runs these in a worker process and pickles their arguments and results: they take the
# registry's id (not the context, which holds locks), an operation's name and its arguments.
_REGISTRIES: dict[int, object] = {}


def _registry_id(ctx: ModelContext) -> int:
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


def models_call(ctx: ModelContext, op: str, *args):
    """A model operation (``histoapp.models.ops``): in the model worker when the app has one (``launch()``), else
    in this process (on ZeroGPU through ``spaces.GPU``)."""
    if ZEROGPU:
        return (_gpu_call_long if op in ("explain_vlm", "answer_vlm", "faithfulness") else _gpu_call)(
            _registry_id(ctx), op, *args
        )
    return ctx.models.call(op, *args)


def _batched(ctx: ModelContext, op: str, key: str, images: list, *options) -> list:
    """``op(key, images, *options)``, with these patches batched together with other requests' for the same model
    and options (``histoapp.models.batcher``)."""
    if ZEROGPU:
        return models_call(ctx, op, key, images, *options)
    return ctx.registry.batcher.map((op, key, *options), lambda ims: ctx.models.call(op, key, ims, *options), images)


def batch_call(ctx: ModelContext, group, fn: Callable[[list], list], item):
    """``fn([item, ...])[0]`` with ``item`` batched together with other calls of the same ``group`` (a whole
    request's work: the API's predictions)."""
    if ZEROGPU:
        return fn([item])[0]
    return ctx.registry.batcher.run(group, fn, item)


def classify_images(ctx: ModelContext, key: str, images: list) -> list:
    """Probabilities of each patch with model ``key`` (the batch table's, and the API's plain prediction)."""
    return _batched(ctx, "classify", key, images)


def tta_images(ctx: ModelContext, key: str, images: list) -> list:
    """``classify_images`` with test-time augmentation (8 views per patch, one batch)."""
    return _batched(ctx, "classify", key, images, True)


def explain_cnn_images(ctx: ModelContext, key: str, images: list, method: str, target: str | None = None) -> list:
    """A CNN's probabilities and CAM (``method``, of class ``target``; default the predicted one) for each patch."""
    return _batched(ctx, "explain_cnn", key, images, method, target)


def explain_vlm_images(ctx: ModelContext, key: str, images: list) -> list:
    """A VLM's probabilities and label-token attention map for each patch (one pass for all of them)."""
    return _batched(ctx, "explain_vlm", key, images)


def model_concurrency(settings) -> int:
    """Model-running events at once (the Predict tab's and the API's, one group): enough for a full batch to
    gather in the batcher; without batching, two (one per core)."""
    return max(2, settings.predict_batch)

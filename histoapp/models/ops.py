"""The model operations the app asks for, as plain functions of a ``ModelRegistry`` and picklable values
(model keys, PIL images, option strings; ``trainer.predict.Prediction`` results): the same calls run in the app's process
(``LocalModels``: tests, ZeroGPU, ``HISTOAPP_MODEL_WORKER=0``) or in the model worker process
(``histoapp.models.worker``), so the two give the same answers."""

from __future__ import annotations

from collections.abc import Callable

# The explained class when the user names none: the model's own answer (the Predict tab's choice, first).
PREDICTED_CLASS = "predicted class"


def classify(registry, key: str, images: list, tta: bool = False) -> list:
    """Probabilities (+ latency) of every patch with one model, in one forward pass; ``tta``: with each patch's 8
    flips / rotations."""
    from histoapp.models.inference import classify_many

    return classify_many(registry.load(key), images, tta=tta)


def target_index(loaded, target: str | None) -> int | None:
    if not target or target == PREDICTED_CLASS:
        return None
    if target not in loaded.classes:
        raise ValueError(f"this CNN has no class {target!r} (its classes: {', '.join(loaded.classes)})")
    return loaded.classes.index(target)


def explain_cnn(registry, key: str, images: list, method: str, target: str | None = None) -> list:
    """A CNN's probabilities and CAM (``method``, of class ``target``; default the predicted one) of each patch."""
    from histoapp.models.inference import explain_many

    loaded = registry.load(key)
    return explain_many(loaded, images, method=method, target=target_index(loaded, target))


def explain_vlm(registry, key: str, images: list) -> list:
    """A VLM's probabilities and label-token attention map of each patch (one pass for all of them)."""
    from histoapp.models.inference import explain_many

    return explain_many(registry.load(key), images)


def answer_vlm(registry, key: str, image, pred):
    """``pred`` with the VLM's free-text answer about ``image`` and its time."""
    from histoapp.models.inference import add_answer

    return add_answer(registry.load(key), pred, image)


def faithfulness(registry, key: str, image, heatmap, method: str, target: int | None = None):
    """How faithful ``heatmap`` (model ``key``'s ``method`` map of ``image``, explaining class ``target``; None: the
    predicted one) is to the model: the drop in the class's probability when the part it marks is removed, against
    the part it leaves (``trainer.explain.faithfulness``)."""
    from trainer.explain.faithfulness import score_map

    return score_map(registry.load(key), image, heatmap, method=method, target=target)


def classes(registry, key: str) -> list[str]:
    return list(registry.load(key).classes)


def default_keys(registry) -> list[str]:
    """The Predict tab's default CNN and VLM (the keys that are set)."""
    return [k for k in (registry.default_key(family) for family in ("cnn", "vlm")) if k]


OPS: dict[str, Callable] = {
    f.__name__: f for f in (classify, explain_cnn, explain_vlm, answer_vlm, faithfulness, classes, default_keys)
}


class LocalModels:
    """The operations run in this process, on ``registry``; ``call(op, *args)`` as the worker client's."""

    def __init__(self, registry):
        self.registry = registry

    def call(self, op: str, *args):
        return OPS[op](self.registry, *args)

    def close(self) -> None:
        pass


def setup(settings):
    """What the operations run on, in the model worker: the registry of ``settings``."""
    from histoapp.models.registry import ModelRegistry

    return ModelRegistry(settings)


def warm(registry) -> list[str]:
    """Load the default models, then run each once (``histoapp.models.warm.load_and_prime``): their names."""
    from histoapp.models.warm import load_and_prime

    return load_and_prime(registry, default_keys(registry))

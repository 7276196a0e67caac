"""Plain handler functions of the app context, wired to Gradio events."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable


def bind(fn: Callable, *first) -> Callable:
    """``fn`` with its first arguments (the app context, ...) given, keeping the signature and type hints of the
    rest: Gradio injects ``gr.Request`` / ``gr.SelectData`` by them, which ``functools.partial`` hides."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def handler(*args, **kwargs):
        return fn(*first, *args, **kwargs)

    handler.__signature__ = sig.replace(parameters=list(sig.parameters.values())[len(first) :])
    return handler

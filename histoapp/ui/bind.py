"""The one way a tab wires its handlers: plain functions of the app context (``ctx: AppContext``) and the inputs,
tested without a browser, bound here to Gradio events."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping

import gradio as gr


def bind(fn: Callable, *first, outputs: Mapping[str, object] | None = None, **fixed) -> Callable:
    """``fn`` with its first arguments (the app context, ...) and the keyword arguments ``fixed`` given, keeping the
    signature and type hints of the rest: Gradio injects ``gr.Request`` / ``gr.SelectData`` by them, which
    ``functools.partial`` hides.

    ``outputs``: the event's outputs by name (``{"errors": errors_md, ...}``; pass ``list(outputs.values())`` as
    the event's outputs). ``fn`` then returns ``{name: value}`` for the outputs it changes, and the bound handler
    gives Gradio ``{component: value}``: no handler counts positions in a long tuple."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def handler(*args, **kwargs):
        out = fn(*first, *args, **fixed, **kwargs)
        return out if outputs is None else {outputs[name]: value for name, value in out.items()}

    rest = list(sig.parameters.values())[len(first) :]
    handler.__signature__ = sig.replace(parameters=[p for p in rest if p.name not in fixed])
    return handler


def refusal_as_message(fn, output: str):
    """``fn`` with a refusal (``gr.Error``: a role check, a bad request) shown in its ``output``, a message, and
    every other output left as it is: one refused click must not put "Error" on the page's other components."""

    @functools.wraps(fn)
    def handler(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            return {output: f"⚠️ {exc.message}"}

    return handler

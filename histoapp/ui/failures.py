"""Every failure says why: each handler and API endpoint of the app is wrapped so that an unexpected exception
(a read-only or full disk, a database gone away, a driver's refusal) reaches the page or the API client as
``gr.Error`` with its one-line reason (``histoapp.health.reason``) instead of Gradio's bare "Error"; the
traceback goes to the server log."""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

from histoapp import auth
from histoapp.health import reason

log = logging.getLogger("histoapp")


def explained(fn, settings):
    """``fn`` raising ``gr.Error(reason)`` for whatever it raised that is not already a ``gr.Error``."""
    if getattr(fn, "explained", False):
        return fn
    details = auth.mode(settings) != "public"  # a public visitor sees no server path nor driver message

    def fail(exc: Exception):
        log.error("%s failed", getattr(fn, "__name__", "handler"), exc_info=exc)
        return gr.Error(reason(exc, details=details))

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is shown with its reason
                raise fail(exc) from exc

    else:

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001
                raise fail(exc) from exc

    wrapper.explained = True
    return wrapper


def explain_all(blocks: gr.Blocks, settings) -> None:
    """Wrap every event handler and API endpoint of ``blocks`` (call once they are all registered)."""
    for block_fn in blocks.fns.values():
        fn = block_fn.fn
        if fn is not None and not (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)):
            block_fn.fn = explained(fn, settings)

"""The app's public API for ``gradio_client`` (notebooks, scripts, benchmarks): one typed endpoint per action.

The tabs' event handlers are UI plumbing (they return Markdown, figures and component updates); ``build_app``
hides them all from the API. These endpoints call the same functions as the tabs and return plain JSON, so a
client reads named fields instead of ``value_23``. The names below are stable: other code and the README use them.
"""

from __future__ import annotations

import functools
import inspect
import typing
from pathlib import Path
from typing import TypedDict

import gradio as gr

from histoapp.auth import requires, who
from histoapp.models import calls, runner, uploads
from histoapp.public import check_rate
from histoapp.runs import LaunchRefused
from histoapp.store.errors import StoreError
from histoapp.ui import annotate_view as view
from histoapp.ui.annotate_view import View
from histoapp.ui.context import AppContext
from histoapp.ui.tabs import annotate, dashboard, train
from histoapp.ui.tabs import slide as slide_tab

HEATMAP_MAX = 32  # longer side of a heatmap in the JSON (finer than the maps: 4x4 Grad-CAM, 8x8 attention on the demos)


class ModelAnswer(TypedDict):
    """One model's answer about one patch."""

    model: str
    label: str | None  # benign / malignant; None when the model abstains
    prob_malignant: float
    prob_malignant_raw: float | None
    probs: dict[str, float]
    ood_score: float | None
    ood: bool | None
    ood_threshold: float | None
    abstain: str | None
    abstain_reason: str | None
    notes: list[str]
    route: str | None  # why Auto picked this model for the patch; None when the caller named the model
    trained_on: str
    warnings: list[str]
    explanation: str | None
    heatmap: list[list[float]] | None


class PatchResult(TypedDict):
    """Both models' answers about one patch."""

    name: str
    magnification: str | None
    error: str
    cnn: ModelAnswer | None
    vlm: ModelAnswer | None
    agree: bool | None


def _prediction(pred, domain: tuple[str, list[str]] = ("", []), route: str | None = None) -> dict | None:
    """A model's answer as JSON: label and calibrated probabilities, with the trust fields (``trainer.trust``):
    ``ood_score`` / ``ood`` (None without an OOD reference), ``abstain`` (a reason code) and ``abstain_reason``
    (None when the answer stands). A model that abstains gives no ``label`` (None). ``domain``: what the model
    was trained on, and why this patch lies outside it (``histoapp.models.runner.domain_notes``); ``route``: why
    Auto picked that model (None when the caller named it)."""
    if pred is None:
        return None
    probs = dict(zip(pred.classes, (float(p) for p in pred.probs), strict=True))
    optional = lambda v: None if v is None else float(v)  # noqa: E731
    out = {
        "model": pred.model,
        "label": None if pred.abstained else pred.label,
        "prob_malignant": float(pred.prob_malignant),
        "prob_malignant_raw": optional(pred.prob_malignant_raw),
        "probs": probs,
        "ood_score": optional(pred.ood_score),
        "ood": pred.ood,
        "ood_threshold": optional(pred.ood_threshold),
        "abstain": pred.abstain,
        "abstain_reason": pred.abstain_reason,
        "notes": list(pred.notes),
        "route": route,
        "trained_on": domain[0],
        "warnings": list(domain[1]),
        "explanation": pred.explanation.description if pred.explanation is not None else None,
        "heatmap": _small(pred.explanation.heatmap) if pred.explanation is not None else None,
    }
    return out


def _small(heatmap) -> list[list[float]]:
    """The map as rows of values in [0, 1], shrunk to at most HEATMAP_MAX on its longer side (3 decimals)."""
    import numpy as np
    from PIL import Image

    h, w = heatmap.shape
    scale = min(1.0, HEATMAP_MAX / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = Image.fromarray(np.asarray(heatmap, dtype=np.float32), mode="F").resize(size, Image.BILINEAR)
    return np.clip(np.asarray(small), 0.0, 1.0).round(3).tolist()


def predict_batch(
    ctx, images: list[str], cnn: str | None = None, vlm: str | None = None, magnification=None, explain: bool = False
):
    """Both models' probabilities for each patch (the Predict tab's batch table); with ``explain``, also the CNN's
    Grad-CAM and the VLM's attention map of each, from the same forward passes. The caller's rate is checked
    here, per call; then the call joins whatever other calls with the same models and options are waiting, and
    the batcher's worker reads, predicts and answers them together (``histoapp.models.calls.batch_call``)."""
    check_rate(ctx.settings)
    cnn = cnn or runner.model_choices(ctx, "cnn", auto=True)[1]
    vlm = vlm or runner.model_choices(ctx, "vlm", auto=True)[1]
    mag = uploads.magnification_tag(magnification)
    group = ("api-predict", cnn, vlm, mag, bool(explain))
    run = functools.partial(_predict_calls, ctx, cnn=cnn, vlm=vlm, mag=mag, explain=bool(explain))
    images = list(images)
    answers = calls.batch_call(ctx, group, run, images[: uploads.MAX_BATCH])
    # One answer per patch sent: those past the cap are not predicted, and each says so (a client zips answers
    # with its inputs, so none may go missing silently).
    over = f"not predicted: at most {uploads.MAX_BATCH} patches per call; send the rest in another call"
    return answers + [_unanswered(path, over) for path in images[uploads.MAX_BATCH :]]


def _unanswered(path: str, reason: str) -> dict:
    return {"name": Path(path).name, "magnification": None, "error": reason, "cnn": None, "vlm": None, "agree": None}


def _predict_calls(
    ctx: AppContext, requests: list[list[str]], cnn: str | None, vlm: str | None, mag, explain: bool
) -> list:
    """The answers to several ``predict_batch`` calls (each a list of upload paths), their patches predicted
    together: one pass per model for all of them (in batches of ``HISTOAPP_PREDICT_BATCH``)."""
    items = [uploads.read_uploads(ctx, paths, mag) for paths in requests]
    runner.predict_items(ctx, [it for its in items for it in its], {"cnn": cnn, "vlm": vlm}, explain=explain)
    return [
        [
            {
                "name": it.name,
                "magnification": it.magnification,
                "error": it.error,
                **{
                    attr: _prediction(
                        getattr(it, attr), runner.domain_notes(ctx, it.key(attr, key), it), it.routes.get(attr)
                    )
                    for attr, key in (("cnn", cnn), ("vlm", vlm))
                },
                "agree": not it.disagree if it.compared else None,
            }
            for it in its
        ]
        for its in items
    ]


def _annotator(name: str | None, request) -> str:
    who = view.resolve_annotator(name, request)
    if not who:
        raise gr.Error("an annotator name is needed")
    return who


def _store_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except StoreError as exc:
        raise gr.Error(str(exc)) from exc


def register(ctx: AppContext) -> None:
    """Add the endpoints to the Blocks being built (``ctx.blocks``); call after the tabs."""

    def models() -> dict[str, list[str]]:
        """The usable models of each family, by family ("cnn", "vlm"): their keys, to pass to predict; the first
        of each is the default.

        Returns:
            {"cnn": [key, ...], "vlm": [key, ...]}
        """
        return {
            family: [key for _, key in runner.model_choices(ctx, family, auto=True)[0]] for family in ("cnn", "vlm")
        }

    def predict_one(
        image: gr.FileData,
        cnn: str | None = None,
        vlm: str | None = None,
        magnification: str | None = None,
        explain: bool = False,
    ) -> PatchResult:
        """Classify one H&E patch with a CNN and a VLM. A model that abstains (not tissue, out of distribution,
        uncertain) gives no label, only its reason; agree is set only when both answered.

        Parameters:
            image: the patch, a PNG, JPEG or TIFF file
            cnn: a CNN key from the models endpoint, or "auto" (per patch, the model trained nearest it; the default
                when two or more CNNs are trained here, else the demo CNN)
            vlm: a VLM key from the models endpoint, or "auto" (as for cnn; else the demo VLM)
            magnification: the patch's magnification (40X, 100X, 200X or 400X), if known; else read from the file name
            explain: also return each model's heat map (the CNN's Grad-CAM, the VLM's label-token attention)
        Returns:
            name, magnification, error, cnn and vlm (label, prob_malignant, probs, ood_score, abstain_reason,
            trained_on, warnings, heatmap ...), agree
        """
        return predict_batch(ctx, [image["path"]], cnn, vlm, magnification, explain)[0]

    def predict_many(
        images: list[gr.FileData],
        cnn: str | None = None,
        vlm: str | None = None,
        magnification: str | None = None,
        explain: bool = False,
    ) -> list[PatchResult]:
        """Classify up to 200 H&E patches with a CNN and a VLM, in batches; one result each, as the predict endpoint.

        Parameters:
            images: the patches, PNG, JPEG or TIFF files
            cnn: a CNN key from the models endpoint, or "auto" (per patch, the model trained nearest it; the default
                when two or more CNNs are trained here, else the demo CNN)
            vlm: a VLM key from the models endpoint, or "auto" (as for cnn; else the demo VLM)
            magnification: the patches' magnification (40X, 100X, 200X or 400X), if known; else read from each file name
            explain: also return each model's heat map
        Returns:
            one result per patch, in order; past 200 a patch's result is only its error, saying it was not
            predicted
        """
        return predict_batch(ctx, [im["path"] for im in images], cnn, vlm, magnification, explain)

    def score_slide(
        slide: gr.FileData,
        cnn: str | None = None,
        vlm: str | None = None,
        magnification: str | None = None,
        mpp: float | None = None,
        context: bool = False,
    ) -> dict[str, typing.Any]:
        """Score every tissue tile of a field or whole slide at each model's scale (the Slide tab's map).

        Parameters:
            slide: the field or slide: PNG, JPEG, TIFF, pyramidal TIFF, SVS, NDPI, ...
            cnn: a CNN key from the models endpoint (default: the demo CNN; "" for none)
            vlm: a VLM key from the models endpoint (default: none; whole slides are slow with a VLM)
            magnification: the slide's magnification (e.g. 40X) when its file has no scale
            mpp: or its micrometres per pixel
            context: each tile's P(malignant) as the mean of its 3x3 neighbourhood
        Returns:
            slide, width, height, mpp, notes, and per model (cnn, vlm): summary, notes, top and uncertain tiles
        """
        cnn = runner.model_choices(ctx, "cnn")[1] if cnn is None else cnn
        return slide_tab.score_for_api(ctx, slide["path"], cnn, vlm, magnification, mpp, context)

    def annotate_label(
        image_id: int,
        label: str,
        annotator: str = "",
        subtype: str | None = None,
        confidence: float | None = None,
        note: str = "",
        request: gr.Request = None,
    ) -> dict:
        """Save a label for an image of the annotation store; returns the saved annotation.

        Parameters:
            image_id: the image's id in the annotation store
            label: benign or malignant, or a BreakHis subtype code (A, F, PT, TA, DC, LC, MC, PC)
            annotator: your name (ignored when logged in: the login is used)
            subtype: a BreakHis subtype code, if the label does not give one
            confidence: how sure you are, from 0 (unsure) to 1 (certain)
            note: a free-text note
        """
        who = _annotator(annotator, request)
        return _store_call(
            ctx.store.annotate, int(image_id), who, label=label, subtype=subtype, confidence=confidence, note=note
        )

    def annotate_skip(annotator: str = "", skipped: list[int] | None = None, request: gr.Request = None) -> int | None:
        """The next image to label for this annotator; None when the queue is done.

        Parameters:
            annotator: your name (ignored when logged in: the login is used)
            skipped: image ids to pass over
        """
        return annotate.next_id(ctx, _annotator(annotator, request), View(mode="mine", skipped=list(skipped or [])))

    def annotate_undo(annotator: str = "", request: gr.Request = None) -> dict | None:
        """Undo this annotator's last change; None when there is nothing to undo.

        Parameters:
            annotator: your name (ignored when logged in: the login is used)
        """
        return _store_call(ctx.store.undo, _annotator(annotator, request))

    def annotate_redo(annotator: str = "", request: gr.Request = None) -> dict | None:
        """Redo this annotator's last undone change; None when there is nothing to redo.

        Parameters:
            annotator: your name (ignored when logged in: the login is used)
        """
        return _store_call(ctx.store.redo, _annotator(annotator, request))

    def annotate_export(kind: str = "csv") -> gr.FileData | None:
        """Every annotation as a file.

        Parameters:
            kind: csv or json (the annotations), or dataset (the labelled images and a manifest, zipped)
        """
        path, message = annotate.export(ctx, kind)
        if path is None:
            raise gr.Error(message)
        return gr.FileData(path=path)

    def launch_run(preset: str = "quick_demo", name: str | None = None) -> dict[str, typing.Any]:
        """Launch (or queue) a training run from a preset.

        Parameters:
            preset: a preset name, as in the Train tab's Preset list (default quick_demo)
            name: the run's name (default: a fresh one with a time stamp)
        """
        base, message, *values = train.preset_values(ctx, preset)
        if not isinstance(base, dict):
            raise gr.Error(message)
        if name:
            values[train.FIELDS.index("name")] = name
        report = ctx.launcher.launch(base, values, user=who(ctx.settings))
        if not report.ok:
            raise gr.Error("; ".join(report.errors))
        train.record_run_action(ctx, "launch", report.info.name)
        return {"name": report.info.name, "state": report.info.state, "warnings": report.warnings}

    def _run_action(name: str, action: str) -> dict[str, str]:
        try:
            message = train.apply_run_action(ctx, name, action)
        except LaunchRefused as exc:  # the run is untouched: say why instead of reporting a state
            raise gr.Error(f"{action} refused: {exc}") from None
        return {"name": name, "message": message, **run_status(name)}

    def stop_run(name: str) -> dict[str, str]:
        """Ask a run to stop at its next step (it keeps a checkpoint).

        Parameters:
            name: the run's name
        """
        return _run_action(name, "stop")

    def resume_run(name: str) -> dict[str, str]:
        """Resume a stopped run; finished folds are skipped.

        Parameters:
            name: the run's name
        """
        return _run_action(name, "resume")

    def delete_run(name: str) -> dict[str, str]:
        """Delete a run that is not active.

        Parameters:
            name: the run's name
        """
        return _run_action(name, "delete")

    def run_status(name: str) -> dict[str, str]:
        """A run's state: queued, running, stopping, stopped, failed or finished (deleted when there is none).

        Parameters:
            name: the run's name
        """
        info = next((i for i in ctx.runs.list_runs() if i.name == name), None)
        return {"state": info.state if info else "deleted"}

    def export_results(runs: list[str]) -> gr.FileData | None:
        """The Dashboard's per-run summary of finished runs, as a CSV file.

        Parameters:
            runs: the runs' names
        """
        path = dashboard.export_csv(ctx, runs)
        return gr.FileData(path=path) if path else None

    # Each endpoint with the role it needs (histoapp.auth): checked on every call, whoever sends it.
    for fn, name, role in (
        (models, "models", "viewer"),
        (predict_one, "predict", "viewer"),
        (predict_many, "predict_batch", "viewer"),
        (score_slide, "score_slide", "annotator"),
        (annotate_label, "annotate_label", "annotator"),
        (annotate_skip, "annotate_skip", "annotator"),
        (annotate_undo, "annotate_undo", "annotator"),
        (annotate_redo, "annotate_redo", "annotator"),
        (annotate_export, "annotate_export", "annotator"),
        (launch_run, "launch_run", "researcher"),
        (stop_run, "stop_run", "researcher"),
        (resume_run, "resume_run", "researcher"),
        (delete_run, "delete_run", "researcher"),
        (run_status, "run_status", "viewer"),
        (export_results, "export_results", "viewer"),
    ):
        # The model-running endpoints share the Predict tab's group: up to a batch's worth at once (predict.py).
        limit = calls.model_concurrency(ctx.settings)
        kw = {"concurrency_limit": limit, "concurrency_id": "models"} if name.startswith(("predict", "score")) else {}
        gr.api(_documented(requires(role, ctx)(fn)), api_name=name, **kw)
        _describe_parameters(ctx.blocks, name, fn)


def _documented(fn):
    """``fn`` with its type hints resolved in its signature: Gradio reads the return type from the signature as
    written, which ``from __future__ import annotations`` leaves a string ("dict"), shown as Any."""
    hints = typing.get_type_hints(inspect.unwrap(fn))
    sig = inspect.signature(fn)
    fn.__signature__ = sig.replace(
        parameters=[p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()],
        return_annotation=hints.get("return", sig.return_annotation),
    )
    return fn


def _describe_parameters(blocks, api_name: str, fn) -> None:
    """Name and describe the endpoint's parameters on the "Use via API" page (from the docstring's Parameters:
    section); Gradio labels them "1st", "2nd" ... with no description."""
    from gradio.utils import get_function_description

    _, described, _ = get_function_description(fn)
    block_fn = next(f for f in blocks.fns.values() if f.api_name == api_name)
    names = [n for n, p in inspect.signature(fn).parameters.items() if p.annotation not in ("gr.Request", gr.Request)]
    for component, name in zip(block_fn.inputs, names, strict=False):
        component.label = name
        component._api_info = {**component._api_info, "additional_description": described.get(name, "")}

"""The app's public API for ``gradio_client`` (notebooks, scripts, benchmarks): one typed endpoint per action.

The tabs' event handlers are UI plumbing (they return Markdown, figures and component updates); ``build_app``
hides them all from the API. These endpoints call the same functions as the tabs and return plain JSON, so a
client reads named fields instead of ``value_23``. The names below are stable: other code and the README use them.
"""

from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr

from histoapp.auth import requires, who
from histoapp.public import check_rate
from histoapp.runs import LaunchRefused
from histoapp.store.errors import StoreError
from histoapp.ui import annotate_view as view
from histoapp.ui.tabs import annotate, dashboard, predict, train

HEATMAP_MAX = 32  # longer side of a heatmap in the JSON (finer than the maps: 4x4 Grad-CAM, 8x8 attention on the demos)


def _prediction(pred) -> dict | None:
    """A model's answer as JSON: label and calibrated probabilities, with the trust fields (``trainer.trust``):
    ``ood_score`` / ``ood`` (None without an OOD reference), ``abstain`` (a reason code) and ``abstain_reason``
    (None when the answer stands). When ``abstain`` is set, ``label`` is not an answer."""
    if pred is None:
        return None
    probs = dict(zip(pred.classes, (float(p) for p in pred.probs), strict=True))
    optional = lambda v: None if v is None else float(v)  # noqa: E731
    out = {
        "model": pred.model,
        "label": pred.label,
        "prob_malignant": float(pred.prob_malignant),
        "prob_malignant_raw": optional(pred.prob_malignant_raw),
        "probs": probs,
        "ood_score": optional(pred.ood_score),
        "ood": pred.ood,
        "ood_threshold": optional(pred.ood_threshold),
        "abstain": pred.abstain,
        "abstain_reason": pred.abstain_reason,
        "notes": list(pred.notes),
    }
    if pred.heatmap is not None:
        out |= {"explanation": pred.explanation, "heatmap": _small(pred.heatmap)}
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
    the batcher's worker reads, predicts and answers them together (``predict.batch_call``)."""
    check_rate(ctx.settings)
    cnn = cnn or predict.model_choices(ctx, "cnn")[1]
    vlm = vlm or predict.model_choices(ctx, "vlm")[1]
    mag = predict.magnification_tag(magnification)
    group = ("api-predict", cnn, vlm, mag, bool(explain))
    run = functools.partial(_predict_calls, ctx, cnn=cnn, vlm=vlm, mag=mag, explain=bool(explain))
    images = list(images)
    answers = predict.batch_call(ctx, group, run, images[: predict.MAX_BATCH])
    # One answer per patch sent: those past the cap are not predicted, and each says so (a client zips answers
    # with its inputs, so none may go missing silently).
    over = f"not predicted: at most {predict.MAX_BATCH} patches per call; send the rest in another call"
    return answers + [_unanswered(path, over) for path in images[predict.MAX_BATCH :]]


def _unanswered(path: str, reason: str) -> dict:
    return {"name": Path(path).name, "magnification": None, "error": reason, "cnn": None, "vlm": None, "agree": None}


def _predict_calls(ctx, calls: list[list[str]], cnn: str | None, vlm: str | None, mag, explain: bool) -> list:
    """The answers to several ``predict_batch`` calls (each a list of upload paths), their patches predicted
    together: one pass per model for all of them (in batches of ``HISTOAPP_PREDICT_BATCH``)."""
    items = [predict.read_uploads(ctx, paths, mag) for paths in calls]
    readable = [it for its in items for it in its if it.image is not None]
    for key, attr in ((cnn, "cnn"), (vlm, "vlm")):
        if key and readable:
            ims = [it.image for it in readable]
            if not explain:
                preds = predict.classify_images(ctx, key, ims)
            elif attr == "cnn":
                preds = predict.explain_cnn_images(ctx, key, ims, "Grad-CAM")
            else:
                preds = predict.explain_vlm_images(ctx, key, ims)
            for it, pred in zip(readable, preds, strict=True):
                setattr(it, attr, pred)
    return [
        [
            {
                "name": it.name,
                "magnification": it.magnification,
                "error": it.error,
                "cnn": _prediction(it.cnn),
                "vlm": _prediction(it.vlm),
                "agree": None
                if it.cnn is None or it.vlm is None or it.cnn.image_abstained or it.vlm.image_abstained
                else not it.disagree,
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


def register(ctx) -> None:
    """Add the endpoints to the Blocks being built (``ctx.blocks``); call after the tabs."""

    def models() -> dict:
        """The usable models of each family (keys for ``predict``); the first is the default."""
        return {family: [key for _, key in predict.model_choices(ctx, family)[0]] for family in ("cnn", "vlm")}

    def predict_one(
        image: gr.FileData,
        cnn: str | None = None,
        vlm: str | None = None,
        magnification: str | None = None,
        explain: bool = False,
    ) -> dict:
        """One patch -> {name, magnification, error, cnn: {label, prob_malignant, probs, ood_score, ood, abstain,
        abstain_reason}, vlm: {...}, agree}; with ``explain``, each model's entry also has its ``explanation`` and
        ``heatmap`` (rows of values in [0, 1]: the CNN's Grad-CAM, the VLM's label-token attention)."""
        return predict_batch(ctx, [image["path"]], cnn, vlm, magnification, explain)[0]

    def predict_many(
        images: list[gr.FileData],
        cnn: str | None = None,
        vlm: str | None = None,
        magnification: str | None = None,
        explain: bool = False,
    ) -> list[dict]:
        """Patches, one result each (as ``predict``); past MAX_BATCH (200) a patch's result is only its
        ``error``, saying it was not predicted."""
        return predict_batch(ctx, [im["path"] for im in images], cnn, vlm, magnification, explain)

    def annotate_label(
        image_id: int,
        label: str,
        annotator: str = "",
        subtype: str | None = None,
        confidence: int | None = None,
        note: str = "",
        request: gr.Request = None,
    ) -> dict:
        """Save a label (benign/malignant, or a subtype code) for an image; returns the saved state."""
        who = _annotator(annotator, request)
        return _store_call(
            ctx.store.annotate, int(image_id), who, label=label, subtype=subtype, confidence=confidence, note=note
        )

    def annotate_skip(annotator: str = "", skipped: list[int] | None = None, request: gr.Request = None) -> int | None:
        """The next image to label for this annotator, passing over ``skipped`` ids (None when the queue is done)."""
        return annotate.next_id(ctx, _annotator(annotator, request), "mine", None, None, skipped or [])

    def annotate_undo(annotator: str = "", request: gr.Request = None) -> dict | None:
        """Undo this annotator's last change (None when there is nothing to undo)."""
        return _store_call(ctx.store.undo, _annotator(annotator, request))

    def annotate_redo(annotator: str = "", request: gr.Request = None) -> dict | None:
        """Redo this annotator's last undone change."""
        return _store_call(ctx.store.redo, _annotator(annotator, request))

    def annotate_export(kind: str = "csv") -> gr.FileData | None:
        """Every annotation as ``csv`` / ``json``, or the labelled ``dataset`` (zip)."""
        path, message = annotate.export(ctx, kind)
        if path is None:
            raise gr.Error(message)
        return gr.FileData(path=path)

    def launch_run(preset: str = "quick_demo", name: str | None = None) -> dict:
        """Launch (or queue) a run from a preset; ``name`` defaults to a fresh stamped one."""
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

    def _run_action(name: str, action: str) -> dict:
        try:
            message = train.apply_run_action(ctx, name, action)
        except LaunchRefused as exc:  # the run is untouched: say why instead of reporting a state
            raise gr.Error(f"{action} refused: {exc}") from None
        return {"name": name, "message": message, **run_status(name)}

    def stop_run(name: str) -> dict:
        """Ask a run to stop at its next step (it keeps a checkpoint)."""
        return _run_action(name, "stop")

    def resume_run(name: str) -> dict:
        """Resume a stopped run; finished folds are skipped."""
        return _run_action(name, "resume")

    def delete_run(name: str) -> dict:
        """Delete a run that is not active."""
        return _run_action(name, "delete")

    def run_status(name: str) -> dict:
        """A run's state (queued, running, stopping, stopped, failed, finished)."""
        info = next((i for i in ctx.runs.list_runs() if i.name == name), None)
        return {"state": info.state if info else "deleted"}

    def export_results(runs: list[str]) -> gr.FileData | None:
        """The Dashboard's per-run summary of finished runs as CSV."""
        path = dashboard.export_csv(ctx, runs)
        return gr.FileData(path=path) if path else None

    # Each endpoint with the role it needs (histoapp.auth): checked on every call, whoever sends it.
    for fn, name, role in (
        (models, "models", "viewer"),
        (predict_one, "predict", "viewer"),
        (predict_many, "predict_batch", "viewer"),
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
        limit = predict.model_concurrency(ctx.settings)
        kw = {"concurrency_limit": limit, "concurrency_id": "models"} if name.startswith("predict") else {}
        gr.api(requires(role, ctx)(fn), api_name=name, **kw)

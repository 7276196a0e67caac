"""A patch's slide neighbourhood as evidence, for per-patch data cut from whole slides (IDC).

IDC regions are contiguous on the slide, so a patch whose neighbours look malignant is more likely malignant.
The context score of a patch is the mean P(malignant) of itself and of the patches within ``radius`` tiles of it
on the same patient's slide, every one predicted by the same model from its own image: no label is used, so it
is what a slide-tiling pipeline has at test time. It needs the patches' slide coordinates (IDC names carry them,
``predictions.csv`` keeps them); one uploaded patch has no neighbours, so the Predict tab shows the patch alone.

``python -m trainer context RUN_OR_EVAL_FOLDER`` reports both scores for each test fold of a run (or for one
``trainer evaluate`` output) from the predictions already written: nothing is re-predicted."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainer.metrics import METRICS, aggregate, classification_metrics
from trainer.rundir import PREDICTIONS_FILE, RunDir

RADIUS = 1  # the 3x3 block of tiles around a patch; fixed before any test fold was looked at


def tile_step(xs: Sequence[int], ys: Sequence[int]) -> int | None:
    """The tiling's step in slide pixels: the commonest gap between neighbouring coordinates (IDC: 50)."""
    gaps: Counter[int] = Counter()
    for values in (xs, ys):
        u = np.unique(np.asarray(values, dtype=np.int64))
        gaps.update(int(g) for g in np.diff(u) if g > 0)
    return gaps.most_common(1)[0][0] if gaps else None


def neighbour_mean(
    patient_ids: Sequence[str], xs: Sequence[int], ys: Sequence[int], probs: Sequence[float], radius: int = RADIUS
) -> np.ndarray:
    """Each patch's mean P(malignant) over itself and its same-patient neighbours within ``radius`` tiles."""
    probs = np.asarray(probs, dtype=np.float64)
    out = probs.copy()
    if radius < 1 or not len(probs):
        return out
    by_patient: dict[str, list[int]] = defaultdict(list)
    for i, pid in enumerate(patient_ids):
        by_patient[pid].append(i)
    offsets = [(dx, dy) for dx in range(-radius, radius + 1) for dy in range(-radius, radius + 1)]
    for idx in by_patient.values():
        px, py = [xs[i] for i in idx], [ys[i] for i in idx]
        step = tile_step(px, py)
        if step is None:
            continue  # a lone patch: nothing around it
        where = {(x, y): i for i, x, y in zip(idx, px, py, strict=True)}
        for i, x, y in zip(idx, px, py, strict=True):
            near = [where[k] for k in ((x + dx * step, y + dy * step) for dx, dy in offsets) if k in where]
            out[i] = probs[near].mean()
    return out


def context_of_records(records: Sequence, probs: Sequence[float], radius: int = RADIUS) -> np.ndarray | None:
    """``neighbour_mean`` of ``trainer.data`` records (their patient and slide coordinates), or None when any of
    them has no coordinates."""
    if not len(records) or any(r.x is None or r.y is None for r in records):
        return None
    return neighbour_mean(
        [r.patient_id for r in records], [r.x for r in records], [r.y for r in records], probs, radius
    )


def _coordinates(rows: list[dict]) -> tuple[list[int], list[int]] | None:
    """The slide coordinates of ``predictions.csv`` rows: its x / y columns, or, for files written before those
    columns existed, the IDC file names; None when any row has neither."""
    from trainer.data.sources import parse_idc_name

    xs, ys = [], []
    for r in rows:
        if r.get("x") not in (None, "") and r.get("y") not in (None, ""):
            xs.append(int(r["x"]))
            ys.append(int(r["y"]))
            continue
        parsed = parse_idc_name(r.get("path") or "")
        if parsed is None:
            return None
        xs.append(parsed[1])
        ys.append(parsed[2])
    return xs, ys


def context_metrics(rows: list[dict], radius: int = RADIUS) -> dict | None:
    """``{"n", "patch": metrics, "context": metrics}`` for one ``predictions.csv`` (benign vs malignant), or None
    when the patches have no slide coordinates or no binary labels."""
    rows = [r for r in rows if r.get("label") not in (None, "", "-1")]
    coords = _coordinates(rows) if rows else None
    if coords is None:
        return None
    y = np.array([int(r["label"]) for r in rows])
    pids = [r["patient_id"] for r in rows]
    p = np.array([float(r["prob_malignant"]) for r in rows])
    smooth = neighbour_mean(pids, *coords, p, radius)
    return {
        "n": len(rows),
        "patch": classification_metrics(y, p, pids),
        "context": classification_metrics(y, smooth, pids),
    }


def context_report(folder: str | Path, radius: int = RADIUS) -> dict:
    """Patch-alone and context metrics of every finished test fold below a run folder, or of one folder holding
    a ``predictions.csv`` (a ``trainer evaluate`` output), with the mean and std over folds per model."""
    from trainer.runfiles import read_predictions

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    if (folder / PREDICTIONS_FILE).is_file():
        cells = [("evaluate", "all", -1, folder / PREDICTIONS_FILE)]
    else:
        cells = [
            (f.model, f.magnification, f.fold, f.predictions_file)
            for f in RunDir(folder).folds(finished=True)
            if f.predictions_file.is_file()
        ]
    if not cells:
        raise ValueError(
            f"{folder}: no predictions.csv (a run folder with finished folds, or a trainer evaluate output)"
        )
    folds = []
    for model, mag, fold, path in cells:
        res = context_metrics(read_predictions(path), radius)
        if res is None:
            raise ValueError(f"{path}: no labelled patches with slide coordinates (x, y or IDC names): no context")
        folds.append({"model": model, "magnification": mag, "fold": fold, **res})
    summary = []
    for key in dict.fromkeys((f["model"], f["magnification"]) for f in folds):
        mine = [f for f in folds if (f["model"], f["magnification"]) == key]
        row = {"model": key[0], "magnification": key[1], "n_folds": len(mine)}
        for kind in ("patch", "context"):
            row[kind], row[f"{kind}_std"] = aggregate([f[kind] for f in mine])
        summary.append(row)
    return {"folder": str(folder), "radius": radius, "folds": folds, "summary": summary}


def context_markdown(res: dict, metrics: Sequence[str] = ("roc_auc", "balanced_accuracy", "f1")) -> str:
    """One row per fold and a mean row per model: each metric for the patch alone -> with its neighbours."""
    metrics = [m for m in metrics if m in METRICS]
    side = 2 * res["radius"] + 1
    head = ["model", "mag.", "fold", "patches"] + [f"{m} (patch -> {side}x{side} context)" for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(cells: list[str], patch: dict, context: dict) -> str:
        pairs = [
            "—" if patch.get(m) is None or context.get(m) is None else f"{patch[m]:.3f} -> {context[m]:.3f}"
            for m in metrics
        ]
        return "| " + " | ".join(cells + pairs) + " |"

    for f in res["folds"]:
        fold = "—" if f["fold"] < 0 else str(f["fold"])
        lines.append(row([f["model"], f["magnification"], fold, str(f["n"])], f["patch"], f["context"]))
    for s in res["summary"]:
        if s["n_folds"] > 1:
            cells = [f"**{s['model']}**", s["magnification"], f"mean of {s['n_folds']}", ""]
            lines.append(row(cells, s["patch"], s["context"]))
    return "\n".join(lines)

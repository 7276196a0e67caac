"""``python -m trainer explain-eval MODEL... DATA``: which explanation is faithful for which model, on a dataset.

For each model (a checkpoint folder) and each of its methods (the CAM methods for a CNN, the label-token attention
for a VLM, and the model-free baselines when asked), on the same sample of images: the maps, their ROAD
faithfulness and deletion / insertion AUCs (``faithfulness``), the cascading randomisation check on the first
``sanity_images`` of them (``sanity``) and, on IDC data, the energy-based pointing on mosaics of neighbouring
patches (``pointing``); one row per (model, method) in ``report``'s table."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainer.explain import CAM_METHODS
from trainer.explain.baselines import BASELINES, baseline_maps

ATTENTION = "attention"
FAMILY_METHODS = {"cnn": tuple(CAM_METHODS), "vlm": (ATTENTION,)}
ALL_METHODS = (*CAM_METHODS, ATTENTION, *BASELINES)
CHUNK = 16  # images per explanation call (Score-CAM's masked copies stay in memory)


def methods_for(family: str, requested: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(the methods to run for a model of ``family``, the requested ones that do not apply to it)."""
    own = FAMILY_METHODS.get(family, ())
    if not requested:
        return list(own), []
    unknown = [m for m in requested if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(ALL_METHODS)}")
    return [m for m in requested if m in own or m in BASELINES], [m for m in requested if m not in own + BASELINES]


def method_maps(model, images: list, method: str, targets: Sequence[int | None] | None = None):
    """(maps at each image's size, the class each explains or None) of ``method`` for ``model``; ``targets``: the
    class per image (CAM methods; default each image's predicted class)."""
    from trainer.explain.base import explainer_for

    if method in BASELINES:
        return baseline_maps(method, images), [None] * len(images)
    explainer = explainer_for(model)
    if method == ATTENTION:
        exps = [e for k in range(0, len(images), CHUNK) for e in explainer.explain_many(images[k : k + CHUNK])]
        return [e.heatmap for e in exps], [None] * len(images)
    targets = list(targets) if targets is not None else [None] * len(images)
    maps, out_targets = [None] * len(images), [None] * len(images)
    for target in sorted(set(targets), key=lambda t: -1 if t is None else t):  # one call per target class
        idx = [i for i, t in enumerate(targets) if t == target]
        for k in range(0, len(idx), CHUNK):
            part = idx[k : k + CHUNK]
            exps = explainer.explain_many([images[i] for i in part], method=method, target=target)
            for i, e in zip(part, exps, strict=True):
                maps[i], out_targets[i] = e.heatmap, e.target
    return maps, out_targets


def _mean_low(values: Sequence[float]) -> tuple[float, float]:
    """The mean and its 95 % lower bound (normal approximation over the images)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    if not len(v):
        return float("nan"), float("nan")
    sem = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    return float(v.mean()), float(v.mean() - 1.96 * sem)


def evaluate_method(model, images: list, method: str, *, sanity_images: int = 16, sanity_layers=None, mosaics=()):
    """One row of the table: ``model``'s ``method`` on ``images`` (and ``mosaics`` for the pointing)."""
    from trainer.explain.faithfulness import score_maps
    from trainer.explain.pointing import at_scale, energy_pointing
    from trainer.explain.sanity import sanity_check

    t0 = time.perf_counter()
    maps, targets = method_maps(model, images, method)
    seconds_map = (time.perf_counter() - t0) / len(images)
    scores = score_maps(model, images, maps, methods=method, targets=targets)
    road, road_low = _mean_low([s.road_combined for s in scores])
    row = {
        "method": method,
        "n_images": len(images),
        "road_combined": road,
        "road_combined_low": road_low,
        "seconds_map": seconds_map,
        "seconds_score": float(np.mean([s.seconds for s in scores])),
    }
    for key in ("drop_most", "drop_least", "deletion_auc", "insertion_auc", "p_before"):
        row[key] = float(np.mean([getattr(s, key) for s in scores]))
    if sanity_images and method != "random":
        k = min(sanity_images, len(images))
        t1 = time.perf_counter()
        check = sanity_check(
            model,
            images[:k],
            lambda m, ims: method_maps(m, ims, method, targets[:k])[0],
            method=method,
            trained=maps[:k],
            layers=sanity_layers,
        )
        row.update(sanity=check.to_dict(), sanity_final=check.final, sanity_images=k)
        row["seconds_sanity"] = (time.perf_counter() - t1) / k
    if mosaics:
        scaled = at_scale(model, _side(mosaics[0], images[0]))
        before = getattr(model.adapter, "input_size", None)
        try:
            malignant = list(model.classes).index("malignant") if "malignant" in model.classes else None
            mmaps, _ = method_maps(scaled, [m.image for m in mosaics], method, [malignant] * len(mosaics))
        finally:
            model.adapter.input_size = before  # the adapters remember the last size a transform was built for
        row["pointing"] = float(np.nanmean([energy_pointing(h, m.mask) for h, m in zip(mmaps, mosaics, strict=True)]))
        row["pointing_chance"] = float(np.mean([m.chance for m in mosaics]))
        row["pointing_n"] = len(mosaics)
    return row


def _side(mosaic, patch) -> int:
    return max(1, round(mosaic.image.width / max(1, patch.width)))


def sample_records(data: Sequence[str | Path], *, source="auto", patients=None, limit=None, seed: int = 0):
    """(all records of the wanted patients, a reproducible sample of ``limit`` of them)."""
    from trainer.data.roots import index_roots

    report = index_roots([str(d) for d in data], source, verify=False)
    records = sorted(report.records, key=lambda r: r.path)
    if patients:
        unknown = sorted(set(patients) - {r.patient_id for r in records})
        if unknown:
            raise ValueError(f"no images of patient(s) {', '.join(unknown)}")
        records = [r for r in records if r.patient_id in set(patients)]
    if not records:
        raise ValueError(f"no usable images in {', '.join(map(str, data))}")
    pick = np.random.default_rng(seed).permutation(len(records))[: limit or len(records)]
    return records, [records[i] for i in sorted(pick)]


def explain_eval(
    models: Sequence[str | Path],
    data: Sequence[str | Path],
    *,
    methods: Sequence[str] | None = None,
    limit: int | None = 200,
    patients: Sequence[str] | None = None,
    source: str = "auto",
    sanity_images: int = 16,
    sanity_layers: int | None = None,
    mosaics: int = 0,
    mosaic_side: int = 3,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    log=print,
) -> dict:
    """The table (``report.write_table`` writes it): one row per (model, method) on the same images."""
    from trainer.data.images import load_rgb
    from trainer.explain.pointing import idc_mosaics
    from trainer.models import load_checkpoint

    t_start = time.perf_counter()
    records, sample = sample_records(data, source=source, patients=patients, limit=limit, seed=seed)
    images = [load_rgb(r.path) for r in sample]
    tiles = idc_mosaics(records, mosaic_side, mosaics, seed) if mosaics else []
    log(
        f"{len(images)} images of {len(records)} ({len({r.patient_id for r in sample})} patients); {len(tiles)} mosaics"
    )
    rows, skipped = [], []
    for path in models:
        model = load_checkpoint(path, device=device)
        run, missing = methods_for(model.adapter.family, methods)
        skipped += [
            {"model": Path(path).name, "method": m, "why": f"not a {model.adapter.family} method"} for m in missing
        ]
        for method in run:
            t0 = time.perf_counter()
            row = evaluate_method(
                model, images, method, sanity_images=sanity_images, sanity_layers=sanity_layers, mosaics=tiles
            )
            rows.append({"model": Path(path).name, "path": str(path), "family": model.adapter.family, **row})
            if progress:
                log(
                    f"  {Path(path).name} / {method}: ROAD {row['road_combined']:+.3f} ({time.perf_counter() - t0:.0f} s)"
                )
    return {
        "data": [str(d) for d in data],
        "patients": sorted({r.patient_id for r in sample}),
        "n_images": len(images),
        "n_mosaics": len(tiles),
        "seed": seed,
        "rows": rows,
        "skipped": skipped,
        "wall_seconds": time.perf_counter() - t_start,
    }

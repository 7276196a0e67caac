"""Scoring a slide: every tissue tile through the same batched prediction as single patches
(``trainer.predict.predict_images``: calibration, OOD check, abstention), streamed in batches so memory does not
grow with the slide, with optional slide context (``trainer.context.neighbour_mean``: each tile's 3x3 mean, the
score of ``trainer context``).

A reader thread reads and checks the next batches (a row band a read, ``trainer.slide.tiling.read_tiles``; the
tissue test ``trainer.trust.tissue.check_image``) while the model runs on the current one; at most ``PREFETCH``
batches of pixels are held. Background tiles (tissue under ``TrustConfig.min_tissue_fraction``: the abstention
rule's own "no tissue" bound) are kept, marked ``tissue=False``, and never reach the model.

With ``out_dir``, each batch's tiles are appended to ``out_dir/PARTIAL_FILE`` (flushed; a header line names the
slide, the model and the grid) as they are scored: a re-run on the same slide, model and grid reads them back and
scores only the rest, so a stopped or killed run on a big slide continues where it was."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from trainer.data.images import MIN_SIDE
from trainer.slide.exports import CSV_COLUMNS, _cell
from trainer.slide.reader import Slide, SlideError
from trainer.slide.result import SlideResult, Tile
from trainer.slide.scale import ModelScale, model_scale
from trainer.slide.tiling import Grid, plan_grid, read_tiles
from trainer.threads import single_threaded_blas

PARTIAL_FILE = "tiles.partial.csv"
PREFETCH = 2  # batches read ahead of the model
_DONE = object()


def _model_id(model) -> str:
    meta = getattr(model, "meta", None) or {}
    path = getattr(model, "path", None)
    return f"{path}|{meta.get('exported_from', '')}|{meta.get('model', '')}|{meta.get('fold', '')}"


def fingerprint(slide: Slide, model, grid: Grid) -> str:
    """What a partial file must match to be continued: the slide file (size, mtime), the model, the grid."""
    st = slide.path.stat()
    key = json.dumps(
        [str(slide.path.resolve()), st.st_size, int(st.st_mtime), _model_id(model), grid.to_dict()], sort_keys=True
    )
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _read_partial(path: Path, key: str) -> dict[int, Tile]:
    """Tiles already scored by an earlier run with the same fingerprint (a torn last line is dropped)."""
    if not path.is_file():
        return {}
    done: dict[int, Tile] = {}
    with open(path, newline="") as fh:
        head = fh.readline().strip()
        if head != f"# {key}":
            return {}
        for row in csv.DictReader(fh):
            try:
                t = Tile.from_row(row)
            except (KeyError, TypeError, ValueError):
                continue  # the line a killed run was writing
            done[t.index] = t
    return done


class _Partial:
    """Appends scored tiles to the resume file (header: fingerprint line, then the CSV columns)."""

    def __init__(self, path: Path, key: str, keep: dict[int, Tile]):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", newline="") as fh:  # rewritten whole: drops a torn line and a stale run's tiles
            fh.write(f"# {key}\n")
            w = csv.writer(fh)
            w.writerow(CSV_COLUMNS)
            for t in keep.values():
                w.writerow([_cell(getattr(t, c)) for c in CSV_COLUMNS])
        tmp.replace(path)
        self.fh = open(path, "a", newline="")  # noqa: SIM115 - kept open across batches, closed by close()
        self.writer = csv.writer(self.fh)

    def add(self, tiles: list[Tile]) -> None:
        for t in tiles:
            self.writer.writerow([_cell(getattr(t, c)) for c in CSV_COLUMNS])
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


def _stopped(stop) -> bool:
    if stop is None:
        return False
    return bool(stop.is_set() if hasattr(stop, "is_set") else stop())


def _reader(slide, grid, batches, cfg, out: queue.Queue, halt: threading.Event) -> None:
    from trainer.trust.tissue import check_image

    try:
        for specs in batches:
            if halt.is_set():
                return
            images = read_tiles(slide, grid, specs)
            checks = [check_image(im, cfg.tissue_saturation, cfg.max_fit_residual) for im in images]
            out.put((specs, images, checks))
        out.put(_DONE)
    except BaseException as exc:  # noqa: BLE001 - handed to the scoring thread, which raises it
        out.put(exc)


def score_slide(
    model,
    slide: Slide,
    *,
    overlap: float = 0.0,
    batch_size: int = 64,
    context: bool = False,
    progress: Callable[[int, int], None] | None = None,
    out_dir: str | Path | None = None,
    stop=None,
    scale: ModelScale | None = None,
    config=None,
) -> SlideResult:
    """Score every tile of ``slide`` with ``model`` (anything ``trainer.predict.predict_images`` takes).
    ``progress(done, total)`` after each batch; ``stop`` (an Event or a callable) ends early with
    ``complete=False``; ``scale`` overrides the model's (``trainer.slide.scale.model_scale``)."""
    from trainer.predict import _config, predict_images

    t0 = time.perf_counter()
    scale = scale or model_scale(model)
    cfg = config or _config(model)
    grid = plan_grid(slide, scale, overlap)
    specs = list(grid.specs())
    total = len(specs)
    if not total:
        w, h = slide.dimensions
        raise SlideError(
            f"{slide.path}: the whole image ({w * slide.mpp:.0f} x {h * slide.mpp:.0f} um) is too small for one model "
            f"input ({scale.patch_um:.0f} um a side, at least {MIN_SIDE / scale.patch_px:.0%} of it needed): give a "
            "larger field, or check its scale"
        )
    key = fingerprint(slide, model, grid)
    partial_path = Path(out_dir) / PARTIAL_FILE if out_dir is not None else None
    tiles: dict[int, Tile] = _read_partial(partial_path, key) if partial_path else {}
    resumed = len(tiles)
    todo = [s for s in specs if s.index not in tiles]
    partial = _Partial(partial_path, key, tiles) if partial_path else None
    batch_size = max(1, int(batch_size))
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    q: queue.Queue = queue.Queue(maxsize=PREFETCH)
    halt = threading.Event()
    worker = threading.Thread(target=_reader, args=(slide, grid, batches, cfg, q, halt), daemon=True)
    complete = True
    # The reader's checks and the model's pass share the cores: numpy's BLAS threads would spin against torch's.
    with single_threaded_blas():
        worker.start()
        try:
            if progress:
                progress(len(tiles), total)
            while True:
                item = q.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                batch_tiles = _score_batch(model, item, cfg, batch_size, predict_images)
                for t in batch_tiles:
                    tiles[t.index] = t
                if partial:
                    partial.add(batch_tiles)
                if progress:
                    progress(len(tiles), total)
                if _stopped(stop):
                    complete = len(tiles) == total
                    break
        finally:
            halt.set()
            while worker.is_alive():  # let the reader finish its put and see the halt
                with contextlib.suppress(queue.Empty):
                    q.get(timeout=0.1)
            if partial:
                partial.close()
    ordered = [tiles[s.index] for s in specs if s.index in tiles]
    if context:
        _smooth(ordered)
    summary = _summary(ordered, slide, grid, scale, context, time.perf_counter() - t0, resumed, complete)
    notes = list(slide.notes)
    if summary["tissue_tiles"] == 0:
        notes.append("no tissue found: every tile is background (glass, blank or grayscale)")
    return SlideResult(ordered, summary, grid, complete, notes)


def _score_batch(model, item, cfg, batch_size, predict_images) -> list[Tile]:
    specs, images, checks = item
    tissue = [k for k, c in enumerate(checks) if c.tissue_fraction >= cfg.min_tissue_fraction]
    preds = predict_images(
        model, [images[k] for k in tissue], batch_size=batch_size, config=cfg, checks=[checks[k] for k in tissue]
    )
    by_k = dict(zip(tissue, preds, strict=True))
    out = []
    for k, s in enumerate(specs):
        p = by_k.get(k)
        out.append(
            Tile(
                x=s.x,
                y=s.y,
                width=s.width,
                height=s.height,
                tissue=p is not None,
                tissue_fraction=round(float(checks[k].tissue_fraction), 4),
                prob_malignant=p.prob_malignant if p else None,
                prob_patch=p.prob_malignant if p else None,
                abstain=p.abstain if p else None,
                ood=bool(p.ood) if p else False,
                ood_score=p.ood_score if p else None,
                col=s.col,
                row=s.row,
                index=s.index,
            )
        )
    return out


def _smooth(tiles: list[Tile]) -> None:
    """Each tissue tile's map value becomes the mean of its own and its tissue neighbours' (3x3) P(malignant)."""
    from trainer.context import neighbour_mean

    scored = [t for t in tiles if t.tissue and t.prob_patch is not None]
    if not scored:
        return
    smooth = neighbour_mean(
        ["slide"] * len(scored), [t.x for t in scored], [t.y for t in scored], [t.prob_patch for t in scored]
    )
    for t, v in zip(scored, smooth, strict=True):
        t.prob_malignant = float(v)


def _summary(tiles, slide, grid, scale, context, seconds, resumed, complete) -> dict:
    scored = [t for t in tiles if t.tissue and t.prob_malignant is not None]
    tissue_px = sum(min(t.width, grid.stride) * min(t.height, grid.stride) for t in scored)
    return {
        "slide": str(slide.path),
        "dimensions": list(slide.dimensions),
        "tiles": len(tiles),
        "tissue_tiles": len(scored),
        "background_tiles": sum(not t.tissue for t in tiles),
        "tissue_area_mm2": round(tissue_px * slide.mpp * slide.mpp / 1e6, 4),
        "share_malignant": round(sum(t.prob_malignant >= 0.5 for t in scored) / len(scored), 4) if scored else None,
        "abstained": sum(t.abstain is not None for t in scored),
        "ood": sum(bool(t.ood) for t in scored),
        "mpp": slide.mpp,
        "mpp_source": slide.mpp_source,
        "model_mpp": scale.mpp,
        "model_patch_px": scale.patch_px,
        "model_scale_source": scale.source,
        "tile_px": grid.tile,
        "stride_px": grid.stride,
        "overlap": grid.overlap,
        "level": grid.level,
        "context": bool(context),
        "seconds": round(seconds, 3),
        "resumed_tiles": resumed,
        "complete": complete,
    }

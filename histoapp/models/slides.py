"""The Slide runner: what the Slide tab and the API do with an uploaded field or whole slide, through
``trainer.slide`` (reading, tiling at the model's scale, batched scoring, exports): nothing here tiles or
scores. A slide the app opened is kept in ``SlideCache`` under a random id (the tile route serves its Deep
Zoom tiles by that id, never by a path) with whoever opened it; the most recently used few are kept.

``ctx`` is the models' context (``histoapp.models.calls.ModelContext``): the tile explanations go through the
same calls as the Predict tab's."""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from histoapp.models.calls import explain_cnn_images, explain_vlm_images

SLIDES_KEPT = 6  # open slides kept per app (each holds an OpenSlide handle and its results)
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,32}$")
SIDES = ("cnn", "vlm")
REGION_TILES = 6  # tiles shown for a clicked point
EXPLAIN_CAM = "Grad-CAM"


class SlideRefused(ValueError):
    """A slide the app cannot use, with the one-line reason the page shows."""


@dataclass
class SlideSession:
    """One opened slide and what the models said about it."""

    id: str
    name: str
    path: Path  # what is read: the app's copy of an upload, or a bundled / server slide in place
    owner: str | None
    slide: object  # trainer.slide.Slide
    results: dict = field(default_factory=dict)  # "cnn" / "vlm" -> trainer.slide.SlideResult
    keys: dict = field(default_factory=dict)  # "cnn" / "vlm" -> model key
    used: float = field(default_factory=time.monotonic)
    _zoom: object = None
    _thumbs: dict = field(default_factory=dict)
    workdir: Path | None = None  # data_dir/slides/<id>/: the scoring's files (and an upload's copy)

    def thumbnail(self, side: int):
        """The slide's thumbnail at most ``side`` px on its longer side (read once)."""
        if side not in self._thumbs:
            self._thumbs[side] = self.slide.thumbnail(side).convert("RGB")
        return self._thumbs[side]

    @property
    def folder(self) -> Path:
        return self.workdir or self.path.parent

    def deepzoom(self):
        """The slide's Deep Zoom generator (``trainer.slide``'s), made once: the tile route reads tiles from it."""
        if self._zoom is None:
            self._zoom = self.slide.deepzoom()
        return self._zoom


class SlideCache:
    """The open slides by id, the least recently used dropped past ``kept``; thread-safe (the tile route and the
    handlers read it at once)."""

    def __init__(self, kept: int = SLIDES_KEPT):
        self.kept = kept
        self._slides: OrderedDict[str, SlideSession] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session: SlideSession) -> None:
        with self._lock:
            self._slides[session.id] = session
            while len(self._slides) > self.kept:
                _, old = self._slides.popitem(last=False)
                _close(old)

    def get(self, slide_id: str, owner: str | None) -> SlideSession:
        """The slide ``slide_id`` if ``owner`` opened it (``None``: open mode's one user); KeyError otherwise, the
        same for an unknown id, a malformed one and another user's, so an id tells no one whose it is."""
        if not isinstance(slide_id, str) or not ID_PATTERN.match(slide_id):
            raise KeyError(slide_id)
        with self._lock:
            session = self._slides.get(slide_id)
            if session is None or session.owner != owner:
                raise KeyError(slide_id)
            self._slides.move_to_end(slide_id)
            session.used = time.monotonic()
            return session

    def __len__(self) -> int:
        return len(self._slides)


def _close(session: SlideSession) -> None:
    """A slide dropped from the cache: its handle closed and the app's copy deleted (with the scoring's partial
    files); tiles sent to the annotation queue live elsewhere (``queue_dir``)."""
    close = getattr(session.slide, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):  # a handle that will not close is dropped all the same
            close()
    folder = session.folder
    if isinstance(folder, Path) and folder.name == session.id:  # never a slide opened in place
        shutil.rmtree(folder, ignore_errors=True)


def queue_dir(data_dir: Path, session: SlideSession) -> Path:
    """Where a slide's tiles for the annotation queue are kept: the store refers to them after the slide is gone."""
    return Path(data_dir) / "uploads" / "slides" / session.id


def new_id() -> str:
    return secrets.token_urlsafe(16)


def open_upload(
    path: str | Path, slides_dir: Path, owner: str | None, *, mpp: float | None = None, magnification=None
) -> SlideSession:
    """Open an uploaded field or slide (kept as the app's own copy) at the scale its metadata gives, or ``mpp`` /
    ``magnification`` when it has none: ``SlideRefused`` with the reader's reason when it cannot be used."""
    return _open(path, slides_dir, owner, mpp=mpp, magnification=magnification, copy=True)


def open_in_place(
    path: str | Path, slides_dir: Path, owner: str | None, *, mpp: float | None = None, magnification=None
) -> SlideSession:
    """Open a slide the app lists itself (a bundled example, a slide of ``HISTOAPP_SLIDES``) where it lies: a
    whole slide of several GB is read region by region, never copied; the scoring's files go to the session's own
    folder, and closing the session leaves the slide as it was."""
    return _open(path, slides_dir, owner, mpp=mpp, magnification=magnification, copy=False)


def _open(path, slides_dir, owner, *, mpp, magnification, copy: bool) -> SlideSession:
    from trainer.slide import SlideError, open_slide

    src = Path(path)
    if not src.is_file():
        raise SlideRefused(f"{src.name}: no such file")
    slide_id = new_id()
    folder = Path(slides_dir) / slide_id
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", src.name)[-120:] or "slide"
    kept = folder / name if copy else src
    if copy:
        shutil.copyfile(src, kept)
    try:
        slide = open_slide(kept, mpp=mpp or None, magnification=magnification or None)
    except SlideError as exc:  # its message names the file on the server: the client sees the file's own name
        shutil.rmtree(folder, ignore_errors=True)
        text = str(exc).replace(str(kept), src.name)
        raise SlideRefused(text if text.startswith(src.name) else f"{src.name}: {text}") from None
    except Exception as exc:  # any other failure of a reader is still this file's problem, said in one line
        shutil.rmtree(folder, ignore_errors=True)
        raise SlideRefused(f"{src.name}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    return SlideSession(id=slide_id, name=src.name, path=kept, owner=owner, slide=slide, workdir=folder)


def score(ctx, session: SlideSession, side: str, key: str, *, context: bool = False, progress=None, stop=None):
    """Score every tissue tile of the slide with model ``key`` (``trainer.slide.score_slide``: tiles at the
    model's scale, batched, with calibration, the OOD check and abstention); kept on the session as ``side``."""
    from trainer.slide import SlideError, score_slide

    loaded = ctx.registry.load(key)
    out = session.folder / side
    try:
        result = score_slide(
            loaded,
            session.slide,
            context=bool(context),
            batch_size=max(8, int(getattr(ctx.settings, "predict_batch", 16)) * 4),
            progress=progress,
            out_dir=out,
            stop=stop,
        )
    except SlideError as exc:
        raise SlideRefused(f"{session.name}: {str(exc).replace(str(session.path), session.name)}") from None
    session.results[side], session.keys[side] = result, key
    return result


def tiles_near(result, x: float, y: float, k: int = REGION_TILES) -> list:
    """The ``k`` scored tissue tiles nearest a level-0 point (the tile under it first)."""
    tiles = [t for t in result.tiles if t.tissue]
    if not tiles:
        return []
    centres = np.array([(t.x + t.width / 2, t.y + t.height / 2) for t in tiles], dtype=np.float64)
    order = np.argsort(((centres - (x, y)) ** 2).sum(axis=1), kind="stable")
    return [tiles[i] for i in order[:k]]


def tile_image(session: SlideSession, tile):
    """The tile's pixels, level 0 (what the model saw, before its resize to the model's input)."""
    return session.slide.read_region((int(tile.x), int(tile.y)), 0, (int(tile.width), int(tile.height)))


def explain_tiles(ctx, session: SlideSession, side: str, tiles: list) -> list:
    """Each tile's prediction with its explanation (the CNN's Grad-CAM, the VLM's attention), through the
    Predict tab's calls (``histoapp.models.calls``): one batch."""
    key = session.keys.get(side)
    if not key or not tiles:
        return []
    images = [tile_image(session, t) for t in tiles]
    if side == "cnn":
        return explain_cnn_images(ctx, key, images, EXPLAIN_CAM)
    return explain_vlm_images(ctx, key, images)


def disagreement(session: SlideSession, size) -> np.ndarray | None:
    """|P(malignant) CNN - VLM| at each pixel of a map of ``size`` ((w, h) or longer side), NaN where either has no
    tissue tile; None unless both models ran."""
    if not all(s in session.results for s in SIDES):
        return None
    cnn, vlm = (session.results[s].heatmap(size) for s in SIDES)
    return np.abs(cnn - vlm)


def exports(session: SlideSession, side: str, out_dir: Path, thumbnail=None, opacity: float = 0.5) -> list[Path]:
    """The tile table (CSV), the heat map (PNG) and the malignant regions (GeoJSON) of one model's result, named
    after the slide and the side (``trainer.slide``'s writers)."""
    result = session.results[side]
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(session.name).stem}_{side}"
    csv, png, geo = out_dir / f"{stem}_tiles.csv", out_dir / f"{stem}_heatmap.png", out_dir / f"{stem}.geojson"
    result.to_csv(csv)
    result.heatmap_png(png, thumbnail if thumbnail is not None else session.thumbnail(1024), opacity)
    result.to_geojson(geo)
    return [csv, png, geo]


def uncertain_patches(session: SlideSession, side: str, k: int, out_dir: Path) -> list[tuple[Path, object]]:
    """The ``k`` most uncertain tiles of one result written as PNGs (the annotation queue takes files): (path,
    tile) pairs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for tile in session.results[side].uncertain(k):
        path = out_dir / f"{Path(session.name).stem}_x{int(tile.x)}_y{int(tile.y)}.png"
        tile_image(session, tile).save(path)
        done.append((path, tile))
    return done

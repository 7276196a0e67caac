"""Files the app writes for a visitor expire: the downloads it makes (the Dashboard's CSV / HTML exports, the
Predict tab's batch CSV) live in one folder, and files there older than ``ttl_s`` are deleted by a sweep that
runs before each new download and, while the server runs, every ``sweep_every_s`` (``lifespan``).

Gradio's own cache (uploads, and its copy of each download) expires by ``Blocks(delete_cache=...)``
(``histoapp.ui.app.build``), in a folder of this process's own (``own_gradio_cache``); public mode keeps no copy
of an upload (``histoapp.ui.tabs.predict``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

from histoapp.settings import Settings

DOWNLOADS = ".exports"  # below runs_dir
# Outside public mode a download is kept a day (a lab's exports are small and few); public mode: its upload TTL.
PRIVATE_TTL_S = 86_400


def ttl_s(settings: Settings) -> int:
    from histoapp import auth

    return settings.public_upload_ttl_s if auth.mode(settings) == "public" else PRIVATE_TTL_S


def sweep_every_s(settings: Settings) -> float:
    return max(1.0, min(60.0, ttl_s(settings) / 2))


def cache_policy(settings: Settings) -> tuple[int, int]:
    """``Blocks(delete_cache=(every, age))``: Gradio deletes its cached files older than ``age`` seconds."""
    ttl = ttl_s(settings)
    return (int(sweep_every_s(settings)) or 1, ttl)


def own_gradio_cache() -> Path:
    """Give this process its own Gradio cache folder (``GRADIO_TEMP_DIR``; one the user set is kept). Gradio
    stores an upload at ``<cache>/<sha256>/<name>``, so two servers on one machine sharing the default
    ``/tmp/gradio`` share the path of the same patch, and one's expiry sweep (``cache_policy``; a public demo's
    runs every second) deletes the other's upload before it is read. Call before the Blocks is built: Gradio
    reads the variable when a Blocks and its server are made."""
    if not os.environ.get("GRADIO_TEMP_DIR"):
        os.environ["GRADIO_TEMP_DIR"] = str(
            Path(tempfile.gettempdir()).resolve() / "gradio" / f"histoapp-{os.getpid()}"
        )
    return Path(os.environ["GRADIO_TEMP_DIR"])


def downloads_dir(settings: Settings) -> Path:
    """Where downloads are written (swept first, so the folder holds only live files)."""
    sweep(settings)
    out = Path(settings.runs_dir) / DOWNLOADS
    out.mkdir(parents=True, exist_ok=True)
    return out


def sweep(settings: Settings, now: float | None = None) -> int:
    """Delete downloads older than the TTL (and folders they leave empty); the number of files deleted."""
    root = Path(settings.runs_dir) / DOWNLOADS
    if not root.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - ttl_s(settings)
    gone, emptied = 0, set()
    # Deepest first, so a folder is looked at after its files. A young empty folder may be about to receive its
    # file (``tempfile.mkdtemp`` then write): only old ones, or those this sweep emptied, go.
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # another sweep got there first, or a folder still in use
            if path.is_dir():
                if not any(path.iterdir()) and (path in emptied or path.stat().st_mtime < cutoff):
                    path.rmdir()
            elif path.lstat().st_mtime < cutoff:
                path.unlink()
                emptied.add(path.parent)
                gone += 1
    return gone


def lifespan(settings: Settings):
    """An ASGI lifespan (``FastAPI(lifespan=...)``, Gradio's ``app_kwargs``) that sweeps while the server runs."""

    @asynccontextmanager
    async def run(app):  # noqa: ARG001 - the app is not needed
        async def loop():
            while True:
                await asyncio.to_thread(sweep, settings)
                await asyncio.sleep(sweep_every_s(settings))

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return run

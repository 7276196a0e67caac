"""Why an action failed, in one line, and whether the app can write where it must (checked at start-up).

Every handler and API endpoint goes through ``histoapp.ui.failures.explained``, which turns an exception into
``reason(exc)``: a read-only or full disk, an unreachable or read-only database, a refused value. Torch- and
Gradio-free."""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path

_OS_REASONS = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "disk full (no space left on device)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
# SQLAlchemy / driver messages -> what they mean to a user.
_DB_REASONS = (
    ("readonly database", "the annotation database is read-only"),
    ("database or disk is full", "the annotation database's disk is full"),
    ("unable to open database file", "the annotation database file cannot be opened (missing or read-only folder)"),
    ("disk i/o error", "the annotation database's disk failed (I/O error)"),
    ("database is locked", "the annotation database is busy (locked by another writer); try again"),
    ("does not exist", "the annotation database does not exist (any more)"),
    ("connection", "the annotation database cannot be reached"),
)


def _first_line(text: str, limit: int = 200) -> str:
    line = next((s.strip() for s in str(text).splitlines() if s.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def reason(exc: BaseException, *, details: bool = True) -> str:
    """``exc`` as one line a user can act on; without ``details`` (public mode), no server path or driver text."""
    from histoapp.store.errors import StoreError

    if isinstance(exc, StoreError):
        return _first_line(exc)
    if isinstance(exc, OSError) and exc.errno is None:  # raised by this code with its own message
        return _first_line(exc) if details else "refused"
    if isinstance(exc, OSError):
        what = _OS_REASONS.get(exc.errno, exc.strerror or "input/output error")
        return f"{what}: {exc.filename}" if exc.filename and details else what
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError):
        detail = _first_line(exc.orig if exc.orig is not None else exc)
        if isinstance(exc, OperationalError):
            lower = detail.lower()
            meaning = next((m for key, m in _DB_REASONS if key in lower), "the annotation database failed")
            return f"{meaning} ({detail})" if details else meaning
        return f"the annotation database refused the value ({detail})" if details else "the database refused a value"
    if isinstance(exc, ValueError):  # this code base's bad-input error (a refused name, value, file)
        return _first_line(exc) if details else "refused: invalid input"
    if isinstance(exc, OverflowError):
        return "a number out of range"
    if not details:
        return "internal error (the server log has the details)"
    return f"internal error ({type(exc).__name__}: {_first_line(exc)})"


def writable(folder: str | Path) -> str | None:
    """None when a file can be created, written, synced and removed in ``folder`` (made if missing), else why not."""
    folder = Path(folder)
    probe = folder / f".histoapp-write-check-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        return reason(exc)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


def database_writable(url: str) -> str | None:
    """None when the annotation database opens (migrated) and takes a write (rolled back), else why not."""
    try:
        from histoapp.store import open_store

        store = open_store(url)
    except Exception as exc:  # noqa: BLE001 - any failure to open is reported, the app still starts
        return reason(exc)
    try:
        store.check_writable()
    except Exception as exc:  # noqa: BLE001
        return reason(exc)
    finally:
        store.close()
    return None


def problems(settings) -> list[str]:
    """What the app cannot do on this machine, one line each (empty: everything can be written). Predict needs
    none of it; annotating needs the database, training the runs folder, uploads and exports the data folder."""
    out = []
    for what, folder in (
        ("data folder (HISTOAPP_DATA)", settings.data_dir),
        ("runs folder (HISTOAPP_RUNS)", settings.runs_dir),
    ):
        if (why := writable(folder)) is not None:
            out.append(f"{what} `{folder}`: {why}")
    if (why := database_writable(settings.database_url)) is not None:
        out.append(f"annotation database: {why}")
    return out

"""Where the app keeps things, overridable by environment variables (handy on Hugging Face Spaces)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS = PROJECT_ROOT / "assets"


def _paths(value: str) -> list[Path]:
    return [Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p]


@dataclass
class Settings:
    # Per-run folders made by the trainer (CLI and Train tab alike).
    runs_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("HISTOAPP_RUNS", PROJECT_ROOT / "runs")).resolve()
    )
    # Working data: generated demo datasets, uploads queued for annotation.
    data_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("HISTOAPP_DATA", PROJECT_ROOT / "data")).resolve()
    )
    # SQLAlchemy URL of the annotation database (SQLite by default).
    database_url: str = field(default_factory=lambda: os.environ.get("HISTOAPP_DB", ""))
    # Folders the Train/Annotate tabs may read datasets from (the browser must not name arbitrary paths).
    allowed_roots: list[Path] = field(default_factory=lambda: _paths(os.environ.get("HISTOAPP_DATA_ROOTS", "")))
    # Largest upload accepted by the app.
    max_upload_mb: int = int(os.environ.get("HISTOAPP_MAX_UPLOAD_MB", "50"))

    def __post_init__(self) -> None:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'annotations.db'}"
        if not self.allowed_roots:
            self.allowed_roots = [self.data_dir, (PROJECT_ROOT.parent / "shared" / "data").resolve()]


def get_settings() -> Settings:
    return Settings()

"""The annotation database: ``open_store(url) -> Store`` (SQLAlchemy; SQLite by default, any URL by config).

``Store`` and ``open_store`` are imported on first use (``histoapp.store.api`` brings in SQLAlchemy and alembic):
importing ``StoreError`` or ``QUALITY_FLAGS`` from here stays light, so the app's page is served sooner."""

from histoapp.store.errors import StoreError
from histoapp.store.fields import QUALITY_FLAGS


def __getattr__(name):
    if name in ("Store", "open_store"):
        from histoapp.store import api

        return getattr(api, name)
    raise AttributeError(f"module 'histoapp.store' has no attribute {name!r}")


__all__ = ["QUALITY_FLAGS", "Store", "StoreError", "open_store"]

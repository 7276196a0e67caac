"""The annotation database: ``open_store(url) -> Store`` (SQLAlchemy; SQLite by default, any URL by config).

``Store``, ``open_store`` and ``QUALITY_FLAGS`` are imported on first use (``histoapp.store.api`` brings in
SQLAlchemy and alembic): importing ``StoreError`` from here stays light, so the app's page is served sooner."""

from histoapp.store.errors import StoreError


def __getattr__(name):
    if name in ("QUALITY_FLAGS", "Store", "open_store"):
        from histoapp.store import api

        return getattr(api, name)
    raise AttributeError(f"module 'histoapp.store' has no attribute {name!r}")


__all__ = ["QUALITY_FLAGS", "Store", "StoreError", "open_store"]

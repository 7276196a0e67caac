"""The annotation database: ``open_store(url) -> Store`` (SQLAlchemy; SQLite by default, any URL by config)."""

from histoapp.store.api import QUALITY_FLAGS, Store, open_store
from histoapp.store.errors import StoreError

__all__ = ["QUALITY_FLAGS", "Store", "StoreError", "open_store"]

"""Engine settings and migrations: the schema the migrations build is the one the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from histoapp.store import StoreError, open_store
from histoapp.store.engine import current_revision, head_revision
from histoapp.store.imports import check_allowed
from histoapp.store.models import Base


def test_sqlite_pragmas_and_revision(store, db_url):
    with store.engine.connect() as conn:
        if store.engine.dialect.name != "sqlite":
            assert current_revision(store.engine) == head_revision()
            return
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    assert current_revision(store.engine) == head_revision()


def test_migrations_match_models(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_reopening_keeps_data(db_url, image_ids, store):
    store.annotate(image_ids[0], "ann", label=1)
    again = open_store(db_url)
    assert len(again.annotations()) == 1
    again.close()


def test_foreign_keys_are_enforced(store):
    with pytest.raises(IntegrityError), store.engine.begin() as conn:  # the store's own connection settings
        conn.exec_driver_sql(
            "INSERT INTO annotations (image_id, annotator, label, blur, fold, pen_mark, out_of_focus, note, "
            "created_at, updated_at) VALUES (999, 'x', 1, FALSE, FALSE, FALSE, FALSE, '', '2026-01-01', '2026-01-01')"
        )


def test_import_outside_allowed_roots_is_refused(store, patches, tmp_path):
    with pytest.raises(StoreError, match="outside the folders"):
        store.import_folder(patches, allowed_roots=[tmp_path / "elsewhere"])
    with pytest.raises(StoreError, match="outside the folders"):
        check_allowed(tmp_path / "allowed" / ".." / "..", [tmp_path / "allowed"])
    with pytest.raises(StoreError, match="folder not found"):
        check_allowed(tmp_path / "nope", [tmp_path])
    assert store.import_folder(patches, allowed_roots=[patches.parent]).added == 32


def test_unlabelled_folder_imports_without_labels(store, tmp_path, patches):
    import shutil

    folder = tmp_path / "slides_to_review"
    folder.mkdir()
    for k, p in enumerate(sorted(patches.rglob("*.png"))[:3]):
        shutil.copy(p, folder / f"patch{k}.png")
    (folder / "broken.png").write_bytes(b"nope")
    result = store.import_folder(folder)
    assert result.added == 3 and result.source == "unlabelled folder" and len(result.problems) == 1
    assert all(store.image(i)["source_label"] is None for i in store.queue(limit=None))

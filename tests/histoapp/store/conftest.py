"""Store fixtures: a fresh database per test on each backend (a SQLite file; a database on the PostgreSQL server
named by ``HISTOAPP_TEST_PG``, which ``.ci/postgres start`` provides) and a few tiny generated patches."""

from __future__ import annotations

import os
import uuid

import pytest

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_admin():
    """An engine on the test PostgreSQL server. Without one the PostgreSQL cases skip locally, but fail in CI
    (``CI=true``), where ``.ci/run`` must have started it."""
    url = os.environ.get("HISTOAPP_TEST_PG")
    if not url:
        msg = 'no PostgreSQL server: run `eval "$(.ci/postgres start)"` (sets HISTOAPP_TEST_PG)'
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs the PostgreSQL cases: {msg}")
        pytest.skip(msg)
    from sqlalchemy import create_engine

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'annotations.db'}"
        return
    admin = request.getfixturevalue("pg_admin")
    name = f"t_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def store(db_url):
    from histoapp.store import open_store

    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def patches(tmp_path_factory):
    """8 subtypes x 1 patient x 4 magnifications x 1 image = 32 patches of 32 px (BreakHis layout)."""
    from trainer.data.synthetic import generate

    return generate(
        tmp_path_factory.mktemp("patches"), patients_per_subtype=1, images_per_magnification=1, size=32, seed=1
    )


@pytest.fixture
def image_ids(store, patches):
    store.import_folder(patches)
    return store.queue(mode="all", limit=None)

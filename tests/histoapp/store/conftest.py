"""Store fixtures: a fresh SQLite database per test and a few tiny generated BreakHis-like patches."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'annotations.db'}"


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

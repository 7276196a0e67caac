"""Shared fixtures: tiny generated data, built in seconds, never ../shared."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the hub


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """A BreakHis-like dataset: 8 subtypes x 2 patients x 4 magnifications x 3 images, 64 px."""
    from trainer.data.synthetic import generate

    return generate(
        tmp_path_factory.mktemp("breakhis"), patients_per_subtype=2, images_per_magnification=3, size=64, seed=0
    )


@pytest.fixture(scope="session")
def synthetic_records(synthetic_root):
    from trainer.data.sources import index_dataset

    report = index_dataset(synthetic_root)
    assert not report.problems
    return report.records

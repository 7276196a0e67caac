"""Failures that say why (issue 28): a read-only data folder, a full disk, a database that went away. The start-up
check names each, Predict still works without a writable data folder, and every action through the app's
handlers fails with a one-line reason (``gr.Error``), never Gradio's bare "Error".

Read-only and full folders are real: a read-only bind mount and a small tmpfs when the tests run as root (root
ignores permission bits), a folder without write permission otherwise; the full disk needs root (else skipped)."""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager

import gradio as gr
import pytest

from histoapp.settings import Settings
from histoapp.ui.examples import list_examples

ROOT = os.geteuid() == 0


def _mount(*args) -> bool:
    return shutil.which("mount") is not None and subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextmanager
def _mounted(path, *args):
    if not _mount(*args, str(path)):
        pytest.skip(f"cannot mount {' '.join(args)} here (no CAP_SYS_ADMIN)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def readonly_dir(tmp_path):
    """An existing, empty folder this process cannot write to."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if not ROOT:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with _mounted(folder, "--bind", "-o", "ro", str(folder)):
        yield folder


@pytest.fixture
def full_dir(tmp_path):
    """A 1 MiB file system, to be filled by the test."""
    if not ROOT:
        pytest.skip("a full file system needs a tmpfs mount (root)")
    folder = tmp_path / "full"
    folder.mkdir()
    with _mounted(folder, "-t", "tmpfs", "-o", "size=1m", "tmpfs"):
        yield folder


def _fill(folder) -> None:
    with open(folder / "filler", "wb") as fh, pytest.raises(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
            os.fsync(fh.fileno())


def _endpoint(demo, name):
    """The function Gradio runs for the API endpoint ``name`` (with every wrapper the app puts around it)."""
    return next(f.fn for f in demo.fns.values() if f.api_name == name)


def test_start_up_check_names_what_cannot_be_written_and_the_page_says_so(tmp_path, readonly_dir):
    from histoapp import health
    from histoapp.ui.app import build

    assert health.problems(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")) == []
    found = health.problems(Settings(runs_dir=tmp_path / "runs", data_dir=readonly_dir))
    why = "read-only file system" if ROOT else "permission denied"
    assert any(line.startswith("data folder (HISTOAPP_DATA)") and why in line for line in found), found
    assert any(line.startswith("annotation database:") and "cannot be opened" in line for line in found), found
    demo, _ = build(Settings(runs_dir=tmp_path / "runs", data_dir=readonly_dir), problems=found)
    (banner,) = [c["props"]["value"] for c in demo.config["components"] if c["props"].get("elem_id") == "problems"]
    assert "Running read-only: predictions work" in banner and found[0] in banner


def test_a_read_only_data_folder_still_predicts_and_annotating_says_why(tmp_path, readonly_dir):
    """Predict kept a copy of each upload in the data folder and failed with the bare error when it could not."""
    from histoapp.ui.app import build

    settings = Settings(runs_dir=tmp_path / "runs", data_dir=readonly_dir, hub_models=[], model_worker=False)
    demo, ctx = build(settings)
    try:
        result = _endpoint(demo, "predict")({"path": str(list_examples()[0]["path"])})
        assert not result["error"] and result["cnn"]["label"] in ("benign", "malignant")
        with pytest.raises(gr.Error, match="annotation database file cannot be opened"):
            _endpoint(demo, "annotate_label")(image_id=1, label="malignant", annotator="ana")
    finally:
        ctx.models.close()


def test_a_full_disk_is_named_at_start_up_and_when_saving(full_dir):
    from histoapp.ui.app import build

    settings = Settings(runs_dir=full_dir / "runs", data_dir=full_dir / "data", hub_models=[])
    demo, ctx = build(settings)
    image_id = ctx.store.add_image(list_examples()[0]["path"], dataset="t", copy_to=full_dir / "data" / "images")
    _fill(full_dir)
    with pytest.raises(gr.Error, match="disk is full|disk full"):
        for k in range(200):  # SQLite fills its WAL page by page: a few writes may still fit
            _endpoint(demo, "annotate_label")(image_id=image_id, label=k % 2, annotator="ana", note="n" * 1500)
    ctx.store.close()
    from histoapp import health

    assert any("disk full" in line for line in health.problems(settings))

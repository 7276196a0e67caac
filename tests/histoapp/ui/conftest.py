import pytest

from histoapp.runs import RunManager
from histoapp.ui.app import AppContext
from tests.histoapp.runs.tiny import make_data, make_settings


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("bh") / "breakhis")


@pytest.fixture
def runs_ctx(tmp_path, tiny_data):
    """The app's context with a RunManager polled by the tabs (no thread); its runs are killed afterwards."""
    c = AppContext(make_settings(tmp_path, tiny_data))
    c.__dict__["runs"] = RunManager(c.settings, threads=1, background=False, stop_timeout_s=60, kill_timeout_s=5)
    yield c
    for info in c.runs.list_runs():
        if info.active or info.state == "queued":
            c.runs.stop(info.name, force=True)
    for proc in list(c.runs._children.values()):
        proc.wait(timeout=30)

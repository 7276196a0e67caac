import pytest

from histoapp.runs import RunManager
from tests.histoapp.runs.tiny import make_data, make_settings


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("bh") / "breakhis")


@pytest.fixture
def run_settings(tmp_path, tiny_data):
    return make_settings(tmp_path, tiny_data)


@pytest.fixture
def manager(run_settings):
    """A RunManager polled by the test (no background thread); every run it started is killed afterwards."""
    m = RunManager(run_settings, threads=1, background=False, stop_timeout_s=30, kill_timeout_s=5)
    yield m
    for info in m.list_runs():
        if info.active or info.state == "queued":
            m.stop(info.name, force=True)
    for proc in list(m._children.values()):
        proc.wait(timeout=30)

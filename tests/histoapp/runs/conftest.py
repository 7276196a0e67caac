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


@pytest.fixture(scope="session")
def slurm_conf():
    """The ``slurm.conf`` of a real single-node SLURM cluster on this machine: the one ``.ci/run`` started
    (``HISTOAPP_TEST_SLURM_CONF``), else one started here with ``.ci/slurm`` and stopped after the tests. Without
    SLURM installed the tests skip locally, but fail in CI (``CI=true``)."""
    import os
    import re
    import shutil
    import subprocess

    from histoapp.settings import PROJECT_ROOT

    given = os.environ.get("HISTOAPP_TEST_SLURM_CONF")
    if given:
        yield given
        return
    missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch") if shutil.which(b) is None]
    if missing:
        msg = f"SLURM is not installed ({', '.join(missing)} missing: apt-get install slurm-wlm munge)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs the SLURM backend's tests: {msg}")
        pytest.skip(msg)
    script = str(PROJECT_ROOT / ".ci" / "slurm")
    out = subprocess.run([script, "start"], capture_output=True, text=True, timeout=120, check=False)
    if out.returncode != 0:
        pytest.fail(f"the SLURM test cluster did not start: {out.stderr.strip()}")
    env = dict(re.findall(r"(\w+)='([^']*)'", out.stdout))
    try:
        yield env["HISTOAPP_TEST_SLURM_CONF"]
    finally:
        subprocess.run([script, "stop", env["HISTOAPP_TEST_SLURM_DIR"]], timeout=120, check=False)


@pytest.fixture
def slurm_settings(run_settings, slurm_conf, monkeypatch):
    """``run_settings`` with the SLURM backend on the test cluster (its commands find it through SLURM_CONF)."""
    monkeypatch.setenv("SLURM_CONF", slurm_conf)
    run_settings.run_backend = "slurm"
    return run_settings


@pytest.fixture
def slurm_runs(slurm_settings):
    """A SLURM backend polled by the test (no thread); every job it submitted is cancelled afterwards."""
    from histoapp.runs.slurm import SlurmRunManager

    m = SlurmRunManager(slurm_settings, threads=1, background=False, stop_timeout_s=60)
    yield m
    for info in m.list_runs():
        if info.job and (info.active or info.state == "queued"):
            m.slurm.cancel(info.job)

"""A training run SIGKILLed mid-fold (issue 28): its status is reconciled as failed, the resume continues from the
mid-fold checkpoint's step (not the fold's start), and the curves show each step once, from the latest attempt."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from histoapp.runs.live import curves
from tests.trainer.conftest import tiny_config
from trainer.config import ExperimentConfig
from trainer.cv import run_experiment
from trainer.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
KILL_AT = 3  # the killed attempt's last step: one past the mid-fold checkpoint at step 2
# The process kills itself with SIGKILL right after writing that step's event: no handler, no final status.
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from trainer.engine import events
    emit = events.EventLog.emit
    def killing_emit(self, event, **fields):
        emit(self, event, **fields)
        if event == "step" and fields.get("step") == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)
    events.EventLog.emit = killing_emit
    from trainer.cli import main
    sys.exit(main(["cv", "--config", sys.argv[1], "--no-progress", "--threads", "1"]))
    """
).format(kill_at=KILL_AT)


def _config(tmp_path, tiny_data) -> dict:
    # One fold of 12 training images in batches of 2: 6 steps an epoch; resume state every 2 steps.
    cfg = tiny_config(tmp_path, tiny_data, epochs=2, batch_size=2, checkpoint_every=2, log_every=1)
    cfg["data"]["folds_to_run"] = [0]
    cfg["trust"] = {"enabled": False}
    return cfg


def test_a_killed_fold_resumes_from_its_mid_fold_checkpoint_and_curves_show_the_latest_attempt(tmp_path, tiny_data):
    cfg = _config(tmp_path, tiny_data)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == -9, killed.stderr[-2000:]

    run = RunDir(tmp_path / "runs" / "tiny")
    left = json.loads(run.status_file.read_text())
    assert left["state"] == "running" and left["attempt"] == 1  # what the kill left behind
    fold = run.fold("resnet18", "40X", 0)
    state = json.loads((fold.last / "trainer_state.json").read_text())
    assert (state["epoch"], state["batch_in_epoch"], state["global_step"]) == (0, 2, 2)  # mid-fold, mid-epoch

    # Reading the status reconciles the file: the process is gone, the run failed.
    assert run.status()["state"] == "failed"
    on_disk = json.loads(run.status_file.read_text())
    assert on_disk["state"] == "failed" and f"process {left['pid']} ended without a final status" in on_disk["message"]

    result = run_experiment(ExperimentConfig.from_dict(cfg), progress=False)  # the same command again: resume
    assert result["state"] == "finished"
    events = run.events()
    assert all("attempt" in e for e in events)
    assert [e["attempt"] for e in events if e["event"] == "run_start"] == [1, 2]
    (resume,) = [e for e in events if e["event"] == "resume"]
    assert (resume["attempt"], resume["step"], resume["epoch"], resume["batch_in_epoch"]) == (2, 2, 0, 2)
    second = [e["step"] for e in events if e["event"] == "step" and e["attempt"] == 2]
    assert second == list(range(3, 13))  # continued from step 2: steps 1-2 were not trained again
    fit = json.loads(fold.metrics_file.read_text())["fit"]
    assert fit["resumed"] is True and fit["global_step"] == 12

    # The killed attempt's step 3 was trained again: the curves show each step once, the latest attempt's.
    from trainer.rundir import current_events

    raw = [e["step"] for e in events if e["event"] == "step"]
    assert raw.count(KILL_AT) == 2
    current = [(e["step"], e["attempt"]) for e in current_events(events) if e["event"] == "step"]
    assert current == [(1, 1), (2, 1)] + [(s, 2) for s in range(3, 13)]
    plotted = curves(run.path)["steps"]
    assert sorted(plotted["step"]) == list(range(1, 13))


def test_status_reconciliation_leaves_live_and_other_hosts_runs_alone(tmp_path):
    from trainer.rundir import reconcile_status

    run = RunDir(tmp_path / "r")
    status = {"state": "running", "pid": 4242, "host": "elsewhere", "message": "fold 0"}
    run.path.mkdir()
    run.status_file.write_text(json.dumps(status))
    assert reconcile_status(run.path)["state"] == "running"  # a pid on another host means nothing here
    assert reconcile_status(run.path, alive=lambda pid: True)["state"] == "running"  # e.g. a scheduler says so
    fixed = reconcile_status(run.path, alive=lambda pid: False)  # ... or says it is gone
    assert fixed["state"] == "failed" and fixed["message"].endswith("; last: fold 0")
    assert json.loads(run.status_file.read_text())["state"] == "failed"

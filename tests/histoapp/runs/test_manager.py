"""Runs as real processes: a SIGKILLed run shows as failed with its log tail, a restarted app (a new
RunManager) re-attaches, one run at a time with the next one queued, delete refused while running."""

import os
import signal

import pytest

from histoapp.runs import LaunchRefused, RunManager
from histoapp.runs.process import pid_alive
from tests.histoapp.runs.tiny import tiny_config, wait_for

pytestmark = pytest.mark.slow


def _state(manager, name):
    manager.refresh()
    return manager.info(name).state


def test_killed_run_is_failed_with_its_log_tail_and_a_new_manager_reattaches(manager, run_settings, tiny_data):
    info = manager.launch(tiny_config(run_settings, "victim", tiny_data, epochs=50))
    assert info.state in ("starting", "running") and pid_alive(info.pid)
    assert (info.path / "config.yaml").is_file() and (info.path / "log.txt").is_file()
    wait_for(lambda: _state(manager, "victim") == "running", what="the run to start")

    # A second manager (the app restarted) sees the same running process from the run folder alone.
    other = RunManager(run_settings, background=False)
    assert other.info("victim").state == "running"
    with pytest.raises(LaunchRefused, match="stop it before deleting"):
        other.delete("victim")

    os.kill(info.pid, signal.SIGKILL)
    wait_for(lambda: _state(manager, "victim") == "failed", 30, what="the killed run to show as failed")
    failed = other.info("victim")
    assert failed.state == "failed"
    assert "--- log tail ---" in failed.message and "run folder:" in failed.message  # the trainer's first log line
    assert manager.log_tail("victim")
    manager.delete("victim")
    assert not info.path.exists()


def test_one_run_at_a_time_the_next_waits_in_the_queue(manager, run_settings, tiny_data):
    first = manager.launch(tiny_config(run_settings, "first", tiny_data, epochs=50))
    second = manager.launch(tiny_config(run_settings, "second", tiny_data, max_steps=1, epochs=1))
    assert first.state in ("starting", "running") and second.state == "queued" and second.pid is None
    manager.refresh()
    assert manager.info("second").state == "queued"
    stopped = manager.stop("first", force=True)
    assert stopped.state in ("stopping", "stopped")
    wait_for(lambda: _state(manager, "first") == "stopped", 30, what="the forced stop")
    assert "forced stop (SIGKILL)" in manager.info("first").message
    wait_for(
        lambda: manager.info("second").state in ("starting", "running", "finished"), 30, what="the queued run to start"
    )
    assert manager.info("second").pid is not None


def test_resume_refuses_active_and_finished_runs(manager, run_settings, tiny_data):
    with pytest.raises(LaunchRefused):
        manager.resume("no-such-run")
    manager.launch(tiny_config(run_settings, "busy", tiny_data, epochs=50))
    with pytest.raises(LaunchRefused, match="nothing to resume"):
        manager.resume("busy")


def test_stop_escalates_to_sigterm_then_sigkill_when_the_process_ignores_it(run_settings, tiny_data):
    """A process that ignores the STOP file and SIGTERM is killed after the timeouts and shown as stopped (forced)."""
    import sys
    import time
    from datetime import datetime, timezone

    from histoapp.runs import process
    from trainer.engine.events import write_json_atomic

    manager = RunManager(run_settings, background=False, stop_timeout_s=0.5, kill_timeout_s=0.5)
    run_dir = run_settings.runs_dir / "stubborn"
    run_dir.mkdir(parents=True)
    tiny_config(run_settings, "stubborn", tiny_data).to_yaml(run_dir / "config.yaml")
    proc = process.spawn(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ignoring', flush=True); time.sleep(120)",
        ],
        run_dir,
    )
    manager._children["stubborn"] = proc
    process.write_launch(run_dir, {"state": "launched", "pid": proc.pid, "pgid": proc.pid, "launched": time.time() - 1})
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")  # what the trainer's RunStatus writes
    write_json_atomic(
        run_dir / "status.json",
        {"state": "running", "pid": proc.pid, "started": now, "updated": now, "message": "training"},
    )
    wait_for(lambda: "ignoring" in manager.log_tail("stubborn"), 30, what="the stub to start")
    assert manager.info("stubborn").state == "running"

    assert manager.stop("stubborn").state == "stopping"
    assert (run_dir / "STOP").exists()
    time.sleep(0.7)
    manager.refresh()
    assert process.read_launch(run_dir)["forced"] == "SIGTERM" and proc.poll() is None  # ignored
    time.sleep(0.5)
    manager.refresh()
    wait_for(lambda: _state(manager, "stubborn") == "stopped", 10, what="the SIGKILL")
    assert proc.returncode == -signal.SIGKILL
    assert "forced stop (SIGKILL)" in manager.info("stubborn").message

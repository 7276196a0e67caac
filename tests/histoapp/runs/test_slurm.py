"""The SLURM run backend on a real single-node cluster (``.ci/slurm``): a run launched from the Train tab is
queued, runs, is preempted (requeued) and continues from its checkpoint, stops through its STOP file and resumes
as a new job to the end, with the live curves of a local run; jobs cancelled from the app and from outside it, a
job that fails, and a submission sbatch refuses, each shown with the scheduler's word."""

import json
import subprocess
from types import SimpleNamespace

import pytest

from histoapp.runs import LaunchRefused
from histoapp.runs.form import FIELDS, JOB_FIELDS, config_to_form
from histoapp.runs.live import curves
from histoapp.runs.slurm import Job, judge, parse_scontrol
from tests.histoapp.runs.tiny import tiny_config, wait_for

# A job starts no earlier than this: long enough to see it wait in the queue, and to cancel it there.
SOON, LATER = "--begin=now+3", "--begin=now+600"


def _state(runs, name):
    runs.refresh()
    return runs.info(name).state


def _until(runs, name, state, timeout):
    """Wait for ``state``; on timeout say where the run is (state, message with its log tail)."""
    try:
        wait_for(lambda: _state(runs, name) == state, timeout, what=f"{name} to be {state}")
    except AssertionError as exc:
        info = runs.info(name)
        raise AssertionError(f"{exc}; it is {info.state}: {info.message}\n{runs.log_tail(name, 20)}") from None


def _launch(runs, settings, name, data, **kw):
    return runs.launch(tiny_config(settings, name, data, epochs=1, max_steps=1, **kw), user="ada")


def _launch_file(info):
    return json.loads((info.path / "launch.json").read_text())


@pytest.mark.slow
def test_a_tab_run_on_slurm_queues_runs_survives_preemption_stops_and_resumes(slurm_settings, slurm_runs, tiny_data):
    from histoapp.ui.app import AppContext
    from histoapp.ui.tabs import train

    slurm_settings.slurm_extra = [SOON]
    ctx = AppContext(slurm_settings)
    ctx.__dict__["runs"] = runs = slurm_runs
    # Enough steps that the run is still inside fold 0 when the test preempts it: with 6 steps at 32 px a quiet
    # machine finished both folds before the requeue landed, and the requeued job found nothing to resume.
    cfg = tiny_config(slurm_settings, "cluster-run", tiny_data, epochs=40, batch_size=2, max_steps=60)
    cfg.data.input_size = 96
    values = {**config_to_form(cfg, slurm_settings), "job.partition": "debug", "job.gpus": 0, "job.time": "30"}
    message, _ = train.launch(ctx, cfg.to_dict(), *[values[k] for k in FIELDS + JOB_FIELDS])
    info = runs.info("cluster-run")
    assert info.by == "local"  # open mode: the one local user
    assert f"queued (SLURM job {info.job} pending (BeginTime))" in message  # its reason
    script = (info.path / "job.sh").read_text()
    assert "#SBATCH --partition=debug" in script and "#SBATCH --time=30" in script and "--requeue" in script
    assert train.history(ctx).loc[0, "by"] == "local"

    # Running on the node: the same live curves as a local run, from the same run folder.
    _until(runs, "cluster-run", "running", 180)
    wait_for(lambda: len(curves(info.path)["steps"]) >= 2, 180, what="the first logged steps")
    status, loss_fig, *_ = train.live_view(ctx, "cluster-run")
    assert "running" in status and f"SLURM job {info.job}" in status and len(loss_fig.data[0].x) >= 2

    # Preempted: back in the queue, then on again in the same job, continuing from last/.
    runs.slurm.requeue(info.job)
    _until(runs, "cluster-run", "queued", 60)
    subprocess.run(["scontrol", "update", f"JobId={info.job}", "StartTime=now"], check=True)
    wait_for(lambda: any(e["event"] == "resume" for e in runs.events("cluster-run")), 180, what="the job to resume")
    assert runs.info("cluster-run").job == info.job

    # Stop: the STOP file, a graceful end (status.json's own "stopped"), the scheduler's COMPLETED kept.
    message, _ = train.stop_run(ctx, "cluster-run")
    assert "Stop requested" in message
    _until(runs, "cluster-run", "stopped", 120)
    assert json.loads((info.path / "status.json").read_text())["state"] == "stopped"
    assert _launch_file(info)["scheduler"]["state"] == "COMPLETED"
    assert len(list(info.path.glob("*/*/fold*/metrics.json"))) < 2

    # Resume: a new job on the same folder, to the end.
    message, _ = train.resume_run(ctx, "cluster-run")
    assert "resumed" in message
    resumed = runs.info("cluster-run")
    assert resumed.job != info.job and _launch_file(resumed)["history"][0]["job_id"] == info.job
    _until(runs, "cluster-run", "finished", 300)
    assert len(list(info.path.glob("*/*/fold*/metrics.json"))) == 2
    assert "finished" in train.live_view(ctx, "cluster-run")[0]


def test_only_researchers_submit_and_cancel_and_a_run_shows_who(slurm_settings, slurm_runs, tiny_data):
    """Logins on: a viewer can neither submit nor cancel; a researcher's job waits in the queue under their name,
    is cancelled from the app, and another is cancelled outside it (an admin's scancel)."""
    import gradio as gr
    from gradio.context import LocalContext

    from histoapp import auth
    from histoapp.ui.app import AppContext
    from histoapp.ui.tabs import train

    slurm_settings.slurm_extra = [LATER]
    slurm_settings.users_file = slurm_settings.data_dir / "users.json"
    auth.add_user(slurm_settings.users_file, "vera", "viewer-pass", "viewer")
    auth.add_user(slurm_settings.users_file, "rita", "researcher-pass", "researcher")
    ctx = AppContext(slurm_settings)
    ctx.__dict__["runs"] = slurm_runs
    cfg = tiny_config(slurm_settings, "mine", tiny_data, epochs=1, max_steps=1)
    values = [config_to_form(cfg, slurm_settings)[k] for k in FIELDS]
    try:
        LocalContext.request.set(SimpleNamespace(username="vera"))
        with pytest.raises(gr.Error, match="needs the researcher role"):
            train.launch(ctx, cfg.to_dict(), *values)
        assert slurm_runs.list_runs() == []
        LocalContext.request.set(SimpleNamespace(username="rita"))
        train.launch(ctx, cfg.to_dict(), *values)
        mine = slurm_runs.info("mine")
        assert (
            mine.state == "queued"
            and mine.by == "rita"
            and "--comment=histoapp-by-rita" in (mine.path / "job.sh").read_text()
        )
        LocalContext.request.set(SimpleNamespace(username="vera"))
        with pytest.raises(gr.Error, match="needs the researcher role"):
            train.stop_run(ctx, "mine")
        with pytest.raises(LaunchRefused, match="waits in the SLURM queue"):
            slurm_runs.delete("mine")
        LocalContext.request.set(SimpleNamespace(username="rita"))
        train.stop_run(ctx, "mine")  # nothing trained yet: scancel at once
    finally:
        LocalContext.request.set(None)
    assert slurm_runs.info("mine").state == "stopped"
    assert "stopped from the app" in slurm_runs.info("mine").message

    theirs = _launch(slurm_runs, slurm_settings, "theirs", tiny_data)
    assert theirs.state == "queued"
    subprocess.run(["scancel", theirs.job], check=True)  # an admin on the cluster
    _until(slurm_runs, "theirs", "stopped", 30)
    assert "cancelled outside the app" in slurm_runs.info("theirs").message
    assert _launch_file(mine)["scheduler"]["state"] == "CANCELLED"  # kept once the scheduler forgets the job
    slurm_runs.delete("mine")
    assert not mine.path.exists()


def test_a_job_that_fails_and_a_submission_sbatch_refuses(slurm_settings, slurm_runs, tiny_data):
    slurm_settings.slurm_python = "/nonexistent/python"  # the app's Python not on the node
    broken = _launch(slurm_runs, slurm_settings, "broken", tiny_data)
    _until(slurm_runs, "broken", "failed", 60)
    failed = slurm_runs.info("broken")
    assert f"SLURM job {broken.job} failed with exit code 127" in failed.message
    assert "/nonexistent/python" in failed.message.split("--- log tail ---")[1]

    # A GPU from a cluster without any: sbatch's own refusal, kept with the run, which stays resumable.
    slurm_settings.slurm_python = ""
    gpu = slurm_runs.launch(
        tiny_config(slurm_settings, "gpu", tiny_data), resources=slurm_runs.resources({"job.gpus": 2})
    )
    assert gpu.state == "failed" and gpu.message.startswith("sbatch refused the job:")
    assert "--gres=gpu:2" in (gpu.path / "job.sh").read_text()
    with pytest.raises(ValueError, match="no partition 'nope'"):
        slurm_runs.resources({"job.partition": "nope"})


def test_resources_are_checked_before_anything_is_written(run_settings):
    from histoapp.runs.slurm import SlurmRunManager

    runs = SlurmRunManager(run_settings, background=False)
    for bad, match in (
        ({"job.time": "1 day"}, "time limit"),
        ({"job.gpus": "two"}, "not a whole number"),
        ({"job.gpus": -1}, "0 or more"),
        ({"job.partition": "gpu\n#SBATCH --qos=top"}, "letters, digits"),
    ):
        with pytest.raises(ValueError, match=match):
            runs.resources(bad)
    assert runs.resources({"job.time": "2-12:00:00", "job.gpus": "1"}) == {
        "partition": "",
        "gpus": 1,
        "time": "2-12:00:00",
    }


def test_a_job_the_scheduler_ends_is_failed_with_its_reason():
    """The verdicts a test cluster cannot reach in seconds (time limits are whole minutes), from scontrol's text."""
    line = (
        "JobId=41 JobName=histoapp-x UserId=ada(1000) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) "
        "Requeue=1 Restarts=0 BatchFlag=1 ExitCode=0:15 RunTime=01:00:07 TimeLimit=01:00:00 NodeList=gpu07"
    )
    job = parse_scontrol("41", line)
    assert job == Job("41", "TIMEOUT", "TimeLimit", "0:15", "gpu07") and job.ended
    stopped = {"state": "stopped", "message": "stopped by SIGTERM"}  # what the trainer writes on the SIGTERM
    state, message = judge(job, stopped, fresh=True, stop_asked=False)
    assert state == "failed" and "ended by the scheduler: the time limit was reached" in message
    assert judge(Job("7", "OUT_OF_MEMORY"), None, False, False)[0] == "failed"
    assert judge(Job("7", "PENDING", "Priority"), None, False, False) == ("queued", "SLURM job 7 pending (Priority)")
    assert judge(Job("7", "RUNNING", node="n1"), None, False, False)[0] == "starting"
    assert judge(Job("7", "COMPLETED"), {"state": "finished"}, True, False) == ("finished", "")


def test_the_job_script_launches_accelerate_over_several_gpus(run_settings):
    """Not run here (no GPU): the script a 2-GPU run gets."""
    from histoapp.runs.slurm import job_script
    from trainer.rundir import RunDir

    run_settings.slurm_account, run_settings.slurm_extra = "lab42", ["--qos=long", "--mem=32G"]
    script = job_script(RunDir(run_settings.runs_dir / "r"), {"gpus": 2, "time": "60"}, run_settings, user="ada")
    assert "#SBATCH --gres=gpu:2" in script and "#SBATCH --account=lab42" in script
    assert script.index("#SBATCH --time=60") < script.index("#SBATCH --qos=long")  # the settings' lines last
    assert "accelerate.commands.launch --multi_gpu --num_processes 2 -m trainer cv" in script.splitlines()[-1]


def test_a_scheduler_that_does_not_answer_judges_nothing_and_starts_no_second_job(run_settings):
    """squeue failing (controller down): the run shows as unknown with the reason, not failed, and can be neither
    resumed (its job may still run) nor deleted until the scheduler answers."""
    from histoapp.runs import process
    from histoapp.runs.slurm import Slurm, SlurmError, SlurmRunManager

    class Down(Slurm):
        def queue(self):
            raise SlurmError("slurm_load_jobs error: Unable to contact slurm controller (connect failure)")

        def submit(self, script):
            raise AssertionError("no job may be submitted")

    runs = SlurmRunManager(run_settings, slurm=Down(), background=False)
    run_dir = run_settings.runs_dir / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("name: r\n")
    process.write_launch(run_dir, {"state": "launched", "backend": "slurm", "job_id": "9", "launched": 1.0})
    info = runs.info("r")
    assert info.state == "unknown" and "Unable to contact slurm controller" in info.message
    runs.refresh()
    for action in (runs.resume, runs.delete):
        with pytest.raises(LaunchRefused, match="SLURM does not answer"):
            action("r")
    assert run_dir.is_dir() and process.read_launch(run_dir)["job_id"] == "9"


def _row(block):
    import gradio as gr

    while not isinstance(block, gr.Row):  # Gradio wraps form fields in a Form of their own
        block = block.parent
    return block


def test_the_train_form_asks_for_partition_gpus_and_time_only_on_slurm(run_settings):
    from histoapp.ui.app import build_app

    labels = ("SLURM partition (blank: the cluster's default)", "GPUs per run", "Time limit (D-HH:MM:SS)")
    for backend in ("local", "slurm"):
        run_settings.run_backend, run_settings.slurm_time = backend, "12:00:00"
        demo = build_app(run_settings)
        fields = [b for b in demo.blocks.values() if getattr(b, "label", None) in labels]
        assert [f.label for f in fields] == list(labels)
        assert {_row(f).visible for f in fields} == {backend == "slurm"} and fields[2].value == "12:00:00"
        # Check and Launch send them after the config's fields.
        ids = [f._id for f in fields]
        assert len([d for d in demo.fns.values() if [b._id for b in d.inputs[-3:]] == ids]) == 2

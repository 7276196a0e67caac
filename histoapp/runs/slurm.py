"""The SLURM run backend: the Train tab's runs as batch jobs on a cluster, through SLURM's own commands (``sbatch``,
``squeue``, ``scontrol``, ``sacct``, ``scancel``, each run without a shell).

A job runs the same ``python -m trainer cv`` on the same run folder as a local run (the folder is on storage the
nodes share), so ``status.json``, ``metrics.jsonl``, checkpoints and ``log.txt`` (the job's output) are what the
live view and the Dashboard read already. ``launch.json`` keeps the job id, what was asked for and, once the job
has ended, the scheduler's verdict (it outlives the scheduler's memory of the job). The state shown comes from
the scheduler while it knows the job (pending -> queued, with its reason), and from ``status.json`` once it ended
normally; a job the scheduler ended (time limit, node failure, out of memory) is failed with that reason.

Stop: the ``STOP`` file first (the trainer saves its checkpoint and ends at the next step), ``scancel`` after the
stop timeout (SIGTERM, which the trainer also treats as a stop, then SIGKILL after the cluster's KillWait). Resume
submits a new job on the same folder; the trainer continues the interrupted fold from its ``last/`` checkpoint.
Jobs are submitted ``--requeue``: a preempted job goes back to the queue and continues the same way."""

from __future__ import annotations

import contextlib
import getpass
import re
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from histoapp.runs import process
from histoapp.runs.manager import ACTIVE, LaunchRefused, RunInfo, RunManager, _ts
from histoapp.settings import PROJECT_ROOT, Settings
from trainer.rundir import RunDir, write_text_atomic

# Scheduler states (squeue %T / scontrol JobState / sacct State), by what the app shows.
WAITING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED"}
RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "STOPPED", "RESIZING"}
ENDED_BY_SCHEDULER = {
    "TIMEOUT": "the time limit was reached",
    "NODE_FAIL": "its node failed",
    "OUT_OF_MEMORY": "it ran out of memory",
    "PREEMPTED": "it was preempted",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "its deadline passed",
}
# The time limit, in one of SLURM's forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
TIME_FORMAT = re.compile(r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}(:\d{1,2}){0,2})$")
NAME_FORMAT = re.compile(r"^[A-Za-z0-9_.-]+$")  # partition / account / user in an #SBATCH line: no spaces, no newline


class SlurmError(RuntimeError):
    """A SLURM command failed; the message is its own error output."""


@dataclass
class Job:
    id: str
    state: str  # the scheduler's, e.g. PENDING, RUNNING, COMPLETED, TIMEOUT
    reason: str = ""
    exit_code: str = ""
    node: str = ""

    @property
    def ended(self) -> bool:
        return self.state not in WAITING | RUNNING


class Slurm:
    """The scheduler's commands. One ``squeue`` answers for all of this user's jobs for ``cache_s`` seconds (the
    live view polls every run every two seconds); a job squeue no longer lists is looked up once with
    ``scontrol`` (jobs ended within MinJobAge) or ``sacct`` (clusters with accounting)."""

    def __init__(self, *, cache_s: float = 1.0, timeout_s: float = 30.0):
        self.cache_s, self.timeout_s = cache_s, timeout_s
        self._queue: tuple[float, dict[str, Job]] | None = None
        self._lock = threading.Lock()

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(list(args), capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except FileNotFoundError:
            raise SlurmError(
                f"{args[0]} is not installed here: the SLURM backend needs SLURM's client commands"
            ) from None
        except subprocess.TimeoutExpired:
            raise SlurmError(f"{args[0]} did not answer within {self.timeout_s:.0f} s (is slurmctld up?)") from None

    def submit(self, script: Path) -> str:
        out = self._run("sbatch", "--parsable", str(script))
        if out.returncode != 0:
            raise SlurmError(out.stderr.strip() or f"sbatch exited with {out.returncode}")
        self._queue = None
        return out.stdout.strip().split(";")[0]  # "<id>[;<cluster>]"

    def cancel(self, job_id: str) -> None:
        """SIGTERM now (the trainer ends at its next step), SIGKILL after the cluster's KillWait."""
        out = self._run("scancel", str(job_id))
        if out.returncode != 0:
            raise SlurmError(out.stderr.strip() or f"scancel exited with {out.returncode}")
        self._queue = None

    def requeue(self, job_id: str) -> None:
        """What a preemption with PreemptMode=REQUEUE does (tests, and admins by hand)."""
        out = self._run("scontrol", "requeue", str(job_id))
        if out.returncode != 0:
            raise SlurmError(out.stderr.strip())
        self._queue = None

    def partition_exists(self, name: str) -> bool:
        return self._run("scontrol", "show", "partition", "-o", name).returncode == 0

    def job(self, job_id: str) -> Job | None:
        """The job as the scheduler knows it now; None when it has forgotten it (no accounting, past MinJobAge)."""
        job_id = str(job_id)
        found = self.queue().get(job_id)
        return found or self._scontrol(job_id) or self._sacct(job_id)

    def queue(self) -> dict[str, Job]:
        """This user's jobs the scheduler holds; SlurmError when it does not answer (then nothing is judged)."""
        with self._lock:
            if self._queue is None or time.monotonic() - self._queue[0] > self.cache_s:
                out = self._run("squeue", "-h", "--user", getpass.getuser(), "-o", "%i|%T|%r|%N")
                if out.returncode != 0:
                    raise SlurmError(out.stderr.strip() or f"squeue exited with {out.returncode}")
                jobs = {}
                for line in out.stdout.splitlines():
                    job_id, state, reason, node = (line.split("|") + ["", "", "", ""])[:4]
                    jobs[job_id] = Job(job_id, state, "" if reason == "None" else reason, "", node)
                self._queue = (time.monotonic(), jobs)
            return self._queue[1]

    def _scontrol(self, job_id: str) -> Job | None:
        out = self._run("scontrol", "show", "job", "-o", job_id)
        return parse_scontrol(job_id, out.stdout) if out.returncode == 0 else None

    def _sacct(self, job_id: str) -> Job | None:
        out = self._run("sacct", "-n", "-P", "-X", "-j", job_id, "-o", "JobID,State,Reason,ExitCode,NodeList")
        for line in out.stdout.splitlines() if out.returncode == 0 else []:
            jid, state, reason, code, node = (line.split("|") + [""] * 5)[:5]
            if jid == job_id:
                return Job(job_id, state.split()[0], "" if reason == "None" else reason, code, node)
        return None


def parse_scontrol(job_id: str, text: str) -> Job | None:
    """A job from ``scontrol show job -o`` (one line of key=value fields)."""

    def field(key: str) -> str:
        m = re.search(rf"(?:^|\s){key}=(\S*)", text)
        return m.group(1) if m else ""

    state = field("JobState")
    if not state:
        return None
    reason = field("Reason")
    return Job(job_id, state, "" if reason == "None" else reason, field("ExitCode"), field("NodeList"))


def judge(job: Job, status: dict | None, fresh: bool, stop_asked: bool) -> tuple[str, str]:
    """(app state, message) of a run whose job is ``job``; ``status``: its ``status.json`` (``fresh``: written by
    this job). The scheduler speaks while the job waits or runs and when it ended the job itself."""
    where = f"SLURM job {job.id}"
    if job.state in WAITING:
        why = f" ({job.reason})" if job.reason else ""
        return ("stopping" if stop_asked else "queued"), f"{where} {job.state.lower()}{why}"
    if job.state in RUNNING:
        if stop_asked:
            return "stopping", f"{where}: stop requested"
        if fresh:  # training, or writing its last files after a final status
            return "running", ""
        return "starting", f"{where} running on {job.node or 'a node'}; the trainer is starting"
    resume = "; resume continues from the last checkpoint"
    if job.state in ENDED_BY_SCHEDULER:
        reason = f" ({job.reason})" if job.reason and job.reason not in job.state else ""
        return "failed", f"{where} ended by the scheduler: {ENDED_BY_SCHEDULER[job.state]}{reason}{resume}"
    if job.state.startswith("CANCELLED"):
        who = "stopped from the app" if stop_asked else "cancelled outside the app (scancel)"
        if fresh and status["state"] == "finished":
            return "finished", ""
        return "stopped", f"{where} {who}{resume}"
    if job.state == "COMPLETED" and fresh and status["state"] in ("finished", "stopped"):
        return status["state"], status.get("message") or ""
    if fresh and status["state"] == "failed":
        return "failed", status.get("message") or f"{where} failed"
    code = f" with exit code {job.exit_code}" if job.exit_code else ""
    return "failed", f"{where} {job.state.lower()}{code} before the trainer wrote a final status"


def job_script(run: RunDir, resources: dict, settings: Settings, *, user: str | None) -> str:
    """The batch script: ``#SBATCH`` options (the run's resources, then the settings' extra lines), then the
    trainer's command (``accelerate launch`` over the GPUs when a run asks for more than one)."""
    gpus = int(resources.get("gpus") or 0)
    cmd = process.trainer_command(run.config_file, gpus=gpus, threads=settings.slurm_cpus or None)
    cmd[0] = settings.slurm_python or sys.executable
    options = [
        f"--job-name=histoapp-{run.name}",
        f"--output={run.log_file}",
        "--open-mode=append",
        f"--chdir={PROJECT_ROOT}",
        "--requeue",
        f"--time={resources['time']}",
    ]
    options += [f"--partition={resources['partition']}"] if resources.get("partition") else []
    options += [f"--account={settings.slurm_account}"] if settings.slurm_account else []
    options += [f"--gres=gpu:{gpus}"] if gpus else []
    options += [f"--cpus-per-task={settings.slurm_cpus}"] if settings.slurm_cpus else []
    options += [f"--comment=histoapp-by-{user}"] if user and NAME_FORMAT.fullmatch(user) else []
    options += list(settings.slurm_extra)
    return "\n".join(
        ["#!/bin/bash", *(f"#SBATCH {o}" for o in options)]
        + [
            "# Written by the app (histoapp.runs.slurm) for this run's latest submission.",
            f"export PYTHONUNBUFFERED=1 PYTHONPATH={shlex.quote(str(PROJECT_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}",
            "echo \"=== $(date '+%Y-%m-%d %H:%M:%S') SLURM job $SLURM_JOB_ID on $(hostname)"
            " (restart ${SLURM_RESTART_COUNT:-0}) $ " + shlex.join(cmd).replace('"', '\\"') + '"',
            # exec: the trainer is the batch step's process, so scancel's SIGTERM reaches it (a clean stop).
            f"exec {shlex.join(cmd)}",
            "",
        ]
    )


class SlurmRunManager(RunManager):
    """``RunManager``'s history, live view, resume and delete, with jobs submitted to SLURM instead of processes
    started here. Runs left by the local backend (no job id) keep the local behaviour."""

    BACKEND = "slurm"
    ATTEMPT_KEYS = ("job_id", "launched", "ended_state", "scheduler")

    def __init__(self, settings: Settings, *, slurm: Slurm | None = None, **kwargs):
        self.slurm = slurm or Slurm()
        super().__init__(settings, **kwargs)

    # --- what a run asks for ---------------------------------------------------------------------------
    def resources(self, values: dict) -> dict:
        """The job's partition / GPUs / time limit from the form (blank: the settings'); ValueError when bad."""
        s = self.settings
        partition = str(values.get("job.partition") or s.slurm_partition or "").strip()
        time_limit = str(values.get("job.time") or s.slurm_time).strip()
        raw = values.get("job.gpus")
        try:
            gpus = int(float(s.slurm_gpus if raw in (None, "") else raw))
        except (TypeError, ValueError):
            raise ValueError(f"GPUs: {raw!r} is not a whole number") from None
        if gpus < 0:
            raise ValueError("GPUs: must be 0 or more")
        if not TIME_FORMAT.fullmatch(time_limit):
            raise ValueError(f"time limit {time_limit!r}: write minutes, HH:MM:SS or D-HH:MM:SS")
        if partition and not NAME_FORMAT.fullmatch(partition):
            raise ValueError(f"partition {partition!r}: letters, digits, '_', '-' and '.' only")
        if partition and not self.slurm.partition_exists(partition):
            raise ValueError(f"the cluster has no partition {partition!r}")
        return {"partition": partition, "gpus": gpus, "time": time_limit}

    def check(self, cfg, *, data_made_at_launch: bool = False) -> tuple[list[str], list[str]]:
        errors, warnings = super().check(cfg, data_made_at_launch=data_made_at_launch)
        if any(c.isspace() for c in str(self.runs_dir)) or any(c.isspace() for c in str(cfg.name)):
            errors.append("the runs folder and the run name must not contain spaces (they go into #SBATCH lines)")
        return errors, warnings

    # --- submitting ----------------------------------------------------------------------------------------
    def _start(self, run_dir: Path) -> None:
        run = RunDir(run_dir)
        launch = process.read_launch(run_dir) or {}
        record = {**launch, "backend": self.BACKEND, "launched": time.time(), "job_id": None}
        record |= {"stop_requested": None, "forced": None, "scheduler": None, "ended_state": None}
        try:
            # A run queued without resources (before the switch to SLURM) takes the settings' defaults.
            record["resources"] = launch.get("resources") or self.resources({})
            script = job_script(run, record["resources"], self.settings, user=launch.get("submitted_by"))
            write_text_atomic(run.job_script, script)
            job_id = self.slurm.submit(run.job_script)
        except (ValueError, SlurmError) as exc:
            process.write_launch(run_dir, {**record, "state": "submit_failed", "error": str(exc)})
            return
        process.write_launch(run_dir, {**record, "state": "launched", "job_id": job_id})

    def _ours(self, launch: dict | None) -> bool:
        """Submitted (or to be submitted) by this backend, not a local process or a CLI run."""
        return bool(launch) and (launch.get("backend") == self.BACKEND or launch.get("state") == "queued")

    # --- watching --------------------------------------------------------------------------------------------
    def _job(self, launch: dict) -> Job | None:
        if launch.get("scheduler"):  # the verdict kept when the job ended
            return Job(**launch["scheduler"])
        return self.slurm.job(launch["job_id"])

    def info(self, name: str) -> RunInfo:
        run_dir = self._dir(name)
        launch = process.read_launch(run_dir)
        if not self._ours(launch) or launch["state"] in ("queued", "cancelled"):
            return super().info(name)
        run = RunDir(run_dir)
        status = run.status()
        info = RunInfo(name, run_dir, "unknown", config=run.config(), by=launch.get("submitted_by"))
        info.launched, info.job = launch.get("launched"), launch.get("job_id")
        if status:
            info.updated = _ts(status.get("updated"))
        if launch["state"] == "submit_failed":
            info.state, info.message = "failed", f"sbatch refused the job: {launch.get('error')}"
            return info
        fresh = status is not None and (_ts(status.get("started")) or 0) >= (launch.get("launched") or 0) - 2
        try:
            job = self._job(launch)
        except SlurmError as exc:  # the controller is down or busy: say so, judge nothing
            info.message = f"SLURM does not answer ({exc}); job {info.job} is shown again when it does"
            return info
        if job is None:
            if fresh and status["state"] in ("finished", "stopped"):
                info.state, info.message = status["state"], status.get("message") or ""
            else:
                info.state = "failed"
                info.message = f"SLURM no longer knows job {info.job}, and the run left no final status"
        else:
            info.state, info.message = judge(job, status, fresh, bool(launch.get("stop_requested")))
        if info.state == "failed":
            tail = process.log_tail(run_dir, 15)
            info.message = f"{info.message}\n--- log tail ---\n{tail}" if tail else info.message
        return info

    def refresh(self) -> None:
        """Submit runs the app queued, escalate overdue stops, keep each ended job's verdict in launch.json."""
        with self._lock:
            now = time.time()
            for info in self.list_runs():
                launch = process.read_launch(info.path)
                if not self._ours(launch):
                    continue
                if launch["state"] == "queued":
                    self._start(info.path)
                elif launch["state"] == "launched" and info.state == "stopping":
                    self._escalate(info, launch, now)
                elif launch["state"] == "launched" and info.state not in (*ACTIVE, "queued", "unknown"):
                    job = self._job(launch)
                    verdict = not launch.get("scheduler") and job is not None and job.ended
                    if verdict or launch.get("ended_state") != info.state:
                        kept = {"scheduler": asdict(job)} if verdict else {}
                        process.write_launch(info.path, {**launch, **kept, "ended_state": info.state, "ended": now})

    # --- stopping ------------------------------------------------------------------------------------------
    def stop(self, name: str, *, force: bool = False) -> RunInfo:
        """The STOP file, ``scancel`` after the stop timeout; ``force`` or a job still waiting: ``scancel`` now."""
        run_dir = self._dir(name)
        with self._lock:
            launch = process.read_launch(run_dir)
            if not self._ours(launch) or launch["state"] != "launched":
                return super().stop(name, force=force)
            info = self.info(name)
            if info.state not in ACTIVE and info.state != "queued":
                raise LaunchRefused(f"{name} is not running ({info.state})")
            RunDir(run_dir).stop_file.touch()
            launch = {**launch, "stop_requested": launch.get("stop_requested") or time.time()}
            if force or info.state in ("queued", "starting"):  # nothing trained yet, or asked to end now
                self._cancel(launch)
            process.write_launch(run_dir, launch)
        self.refresh()
        return self.info(name)

    def _cancel(self, launch: dict) -> None:
        try:
            self.slurm.cancel(launch["job_id"])
        except SlurmError as exc:
            raise LaunchRefused(f"scancel {launch['job_id']} failed: {exc}") from None
        launch["forced"] = "scancel"

    def _escalate(self, info: RunInfo, launch: dict, now: float) -> None:
        run = RunDir(info.path)
        if not launch.get("forced") and not run.stop_file.exists():
            run.stop_file.touch()  # the runner clears a STOP found at its start; ask again
        if not launch.get("forced") and now - launch["stop_requested"] > self.stop_timeout_s:
            with contextlib.suppress(LaunchRefused):  # scancel failed: the next poll tries again
                self._cancel(launch)
                process.write_launch(info.path, launch)

    def delete(self, name: str) -> None:
        launch = process.read_launch(self._dir(name))
        if self._ours(launch) and launch["state"] == "launched":
            self._known(name, "deleting")
            if self.info(name).state == "queued":
                raise LaunchRefused(f"{name} waits in the SLURM queue: stop it (scancel) before deleting it")
        super().delete(name)

    def resume(self, name: str) -> RunInfo:
        self._known(name, "resuming")
        return super().resume(name)

    def _known(self, name: str, doing: str) -> None:
        """A run whose job the scheduler cannot tell about now may still run: no second job, no deleted folder."""
        info = self.info(name)
        if info.state == "unknown" and info.job:
            raise LaunchRefused(f"{info.message}; try {doing} {name} again then")

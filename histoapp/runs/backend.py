"""The run backend interface: what the Train tab, its launch service and the API ask of runs, whichever backend
trains them. ``open_runs`` picks the one ``HISTOAPP_RUN_BACKEND`` names: ``local`` (``RunManager``: processes on
this machine) or ``slurm`` (``SlurmRunManager``: jobs on a SLURM cluster, docs/cluster.md)."""

from __future__ import annotations

from typing import Protocol

from histoapp.runs.manager import RunInfo, RunManager
from histoapp.settings import Settings
from trainer.config import ExperimentConfig


class RunBackend(Protocol):
    BACKEND: str
    stop_timeout_s: float

    def resources(self, values: dict) -> dict | None:
        """The form's ``job.*`` values checked (ValueError); None where the backend asks nothing of a scheduler."""

    def check(self, cfg: ExperimentConfig, *, data_made_at_launch: bool = False) -> tuple[list[str], list[str]]: ...

    def launch(self, cfg: ExperimentConfig, *, user: str | None = None, resources: dict | None = None) -> RunInfo: ...

    def resume(self, name: str) -> RunInfo: ...

    def stop(self, name: str, *, force: bool = False) -> RunInfo: ...

    def delete(self, name: str) -> None: ...

    def info(self, name: str) -> RunInfo: ...

    def list_runs(self) -> list[RunInfo]: ...

    def refresh(self) -> None: ...

    def events(self, name: str) -> list[dict]: ...

    def progress(self, name: str) -> dict: ...

    def log_tail(self, name: str, lines: int = 40) -> str: ...

    def close(self) -> None: ...


def open_runs(settings: Settings, **kwargs) -> RunBackend:
    if settings.run_backend == "slurm":
        from histoapp.runs.slurm import SlurmRunManager

        return SlurmRunManager(settings, **kwargs)
    return RunManager(settings, **kwargs)

"""The Train tab's launch service: form values -> ``ExperimentConfig`` -> checks -> (the annotated set exported
from the annotation store) -> ``RunManager.launch``. Every outcome is a ``LaunchReport`` (errors and warnings
as lists, the run when it started), so the tab only renders it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from histoapp.runs.form import ANNOTATED_DIR, FIELDS, JOB_FIELDS, form_to_config
from histoapp.runs.manager import LaunchRefused, RunInfo, RunManager
from histoapp.settings import Settings
from trainer.config import ExperimentConfig

ANNOTATED_SOURCE = "annotated set"  # the form's data source exported from the store when the run launches


@dataclass
class LaunchReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    info: RunInfo | None = None  # the launched (or queued) run

    @property
    def ok(self) -> bool:
        return not self.errors


class LaunchService:
    """One per app: ``runs`` (a ``histoapp.runs.backend.RunBackend``) trains the runs; ``store`` (called when
    needed) gives the annotation store. ``values``: the form's FIELDS, then (optionally) its JOB_FIELDS."""

    def __init__(self, runs: RunManager, settings: Settings, store: Callable[[], object]):
        self.runs, self.settings, self.store = runs, settings, store

    def config(self, base: dict, values: list | tuple) -> ExperimentConfig:
        """The run's config: the preset's (``base``) with the form's values; ValueError/TypeError on bad input."""
        return form_to_config(_fields(values), ExperimentConfig.from_dict(base), self.settings)

    def resources(self, values: list | tuple) -> dict | None:
        """What the backend's scheduler is asked for (blank fields: the settings'); ValueError on bad input."""
        return self.runs.resources(dict(zip(JOB_FIELDS, values[len(FIELDS) :], strict=False)))  # absent: defaults

    @staticmethod
    def annotated(values: list | tuple) -> bool:
        return _fields(values)["data.source"] == ANNOTATED_SOURCE

    def check(self, base: dict, values: list | tuple) -> LaunchReport:
        try:
            cfg = self.config(base, values)
            self.resources(values)
        except (ValueError, TypeError) as exc:
            return LaunchReport([str(exc)])
        annotated = self.annotated(values)
        errors, warnings = self.runs.check(cfg, data_made_at_launch=annotated)
        if annotated:
            warnings.append("the annotated set is exported from the annotation store when the run is launched")
        return LaunchReport(errors, warnings)

    def launch(self, base: dict, values: list | tuple, *, user: str | None = None) -> LaunchReport:
        """Validate and start (or queue) the run as ``user``'s. Nothing is exported or written when a check fails."""
        try:
            cfg = self.config(base, values)
            resources = self.resources(values)
            if self.annotated(values):
                errors, _ = self.runs.check(cfg, data_made_at_launch=True)
                if errors:
                    return LaunchReport(errors)
                cfg = self.annotated_config(cfg, self.export_annotated(cfg.name))
            warnings = self.runs.check(cfg)[1]
            return LaunchReport(warnings=warnings, info=self.runs.launch(cfg, user=user, resources=resources))
        except LaunchRefused as exc:
            return LaunchReport(exc.reasons)
        except (ValueError, TypeError) as exc:
            return LaunchReport([str(exc)])

    def export_annotated(self, run_name: str) -> Path:
        """The annotation store's consensus labels now, exported into a new folder for this run (a snapshot: later
        annotations do not change a running experiment's data)."""
        out = self.settings.data_dir / ANNOTATED_DIR / run_name
        try:
            store = self.store()
        except ImportError:
            raise LaunchRefused(
                "the annotated set needs the annotation store (histoapp.store), which this install does not have yet"
            ) from None
        try:
            return Path(store.export_dataset(out))
        except Exception as exc:  # nothing annotated yet, database problems ...
            raise LaunchRefused(f"exporting the annotated set failed: {exc}") from None

    @staticmethod
    def annotated_config(cfg: ExperimentConfig, exported: Path) -> ExperimentConfig:
        """Point the run at the exported annotated set, in whichever layout the store wrote it."""
        from trainer.data.sources import detect_source

        try:
            source = detect_source(exported)
        except (ValueError, FileNotFoundError) as exc:
            raise LaunchRefused(f"the exported annotated set is not a dataset the trainer reads: {exc}") from None
        return cfg.with_overrides([f"data.root={exported}", f"data.source={source}"])


def _fields(values: list | tuple) -> dict:
    if len(values) < len(FIELDS):
        raise ValueError(f"the form sent {len(values)} values for its {len(FIELDS)} fields")
    return dict(zip(FIELDS, values[: len(FIELDS)], strict=True))

"""The app context every tab's handlers take as their first argument (``ctx: AppContext``): the settings, the
Blocks being built, and the heavy parts (models, store, runs), each built on first use so the app starts fast."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import gradio as gr

from histoapp.settings import Settings


@dataclass
class AppContext:
    """What every tab may use. Heavy parts are built on first use, so the app starts fast."""

    settings: Settings
    # The Blocks and the Tab being built: a tab registers page-load (``blocks.load``) and tab-open events on them.
    blocks: gr.Blocks | None = None
    tab: gr.Tab | None = None
    # launch() warms the default models (in the model worker, or here once the page is served); the Predict tab
    # then says when they are ready.
    warm: bool = False
    # The model worker (histoapp.models.worker_client) that runs every model pass; None: they run in this process.
    worker: object | None = None

    @cached_property
    def models(self):
        """Where the model operations run (``histoapp.models.ops``): the worker, else this process."""
        if self.worker is not None:
            return self.worker
        from histoapp.models.ops import LocalModels

        return LocalModels(self.registry)

    @cached_property
    def registry(self):
        """Models the Predict tab can use (demo models, finished runs, hub ids): ``histoapp.models``."""
        from histoapp.models.registry import ModelRegistry

        return ModelRegistry(self.settings)

    @cached_property
    def warmup(self):
        """Loads the Predict tab's default CNN and VLM: the model worker's own warm-up, else a background thread
        (``histoapp.models.warm``)."""
        if self.worker is not None:
            return self.worker
        from histoapp.models.ops import default_keys
        from histoapp.models.warm import Warmup

        return Warmup(self.registry, lambda: default_keys(self.registry))

    @cached_property
    def slides(self):
        """The slides opened in the Slide tab, by id (the tile route serves them): ``histoapp.models.slides``."""
        from histoapp.models.slides import SlideCache

        return SlideCache()

    @cached_property
    def store(self):
        """The annotation database: ``histoapp.store``."""
        from histoapp.store import open_store

        return open_store(self.settings.database_url)

    @cached_property
    def runs(self):
        """The Train tab's runs, on the backend the settings name (processes here, or SLURM jobs): ``histoapp.runs``."""
        from histoapp.runs.backend import open_runs

        return open_runs(self.settings)

    @cached_property
    def launcher(self):
        """Form -> checked config -> launched run, for the Train tab: ``histoapp.runs.launch``."""
        from histoapp.runs.launch import LaunchService

        return LaunchService(self.runs, self.settings, lambda: self.store)

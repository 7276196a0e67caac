"""histoapp: the Gradio application (ui), its model registry (models), explanations (explain) and the
annotation database (store). Training, data and metrics live in the ``trainer`` package."""

__version__ = "0.1.0"

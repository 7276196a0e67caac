"""histoapp entry point (also the Hugging Face Spaces ``app_file``): ``uv run app.py``."""

from histoapp.ui.app import launch

if __name__ == "__main__":
    launch()  # where it listens: histoapp.settings.Settings (GRADIO_SERVER_NAME)

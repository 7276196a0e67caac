"""histoapp entry point (also the Hugging Face Spaces ``app_file``): ``uv run app.py``."""

if __name__ == "__main__":
    from histoapp.models.worker_client import start_worker
    from histoapp.settings import get_settings

    # The model worker first: it imports torch and loads the default models on one core while this process
    # imports Gradio and builds the page on the other (histoapp.models.worker).
    worker = start_worker(get_settings())
    from histoapp.ui.app import launch

    launch(worker=worker)  # where it listens: histoapp.settings.Settings (GRADIO_SERVER_NAME)

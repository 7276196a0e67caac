"""histoapp entry point (also the Hugging Face Spaces ``app_file``): ``uv run app.py``."""

import os

from histoapp.ui.app import launch

if __name__ == "__main__":
    launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))

"""Gradio's cache of one app server is its own (``own_gradio_cache``); the served check, another server's sweep
leaving this one's uploads alone, is in tests/ui/test_hardening_served.py."""

import os
import subprocess
import sys
from pathlib import Path

from histoapp import visitor_files

ROOT = Path(__file__).resolve().parents[2]


def test_each_process_gets_its_own_gradio_cache_and_a_chosen_one_is_kept(tmp_path):
    here = visitor_files.own_gradio_cache()
    assert os.environ["GRADIO_TEMP_DIR"] == str(here)
    code = "from histoapp import visitor_files; print(visitor_files.own_gradio_cache())"
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    other = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert Path(other.stdout.strip()) != here
    chosen = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "GRADIO_TEMP_DIR": str(tmp_path)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(chosen.stdout.strip()) == tmp_path

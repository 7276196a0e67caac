import json
import os
import subprocess
import sys
from pathlib import Path

from histoapp.settings import Settings
from histoapp.ui.app import TABS, build_app

ROOT = Path(__file__).resolve().parents[2]
# Imported on first use only (issue 16): the page is served before any of them loads. The first six are the
# issue's list; SQLAlchemy (the annotation store) and plotly (the Train and Dashboard figures) wait as well.
HEAVY = ("torch", "torchvision", "transformers", "pytorch_grad_cam", "scipy", "sklearn", "sqlalchemy", "plotly")
BUILD = """
import json, sys
from pathlib import Path
from histoapp.settings import Settings
from histoapp.ui.app import build_app
tmp = Path(sys.argv[1])
build_app(Settings(runs_dir=tmp / "runs", data_dir=tmp / "data"))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2].split(","))))
"""


def test_app_builds_offline_with_all_tabs(tmp_path):
    demo = build_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    for name, _ in TABS:
        assert name in labels
    assert [n for n, _ in TABS] == ["Predict", "Slide", "Annotate", "Train", "Dashboard", "About"]


def run_fresh(script: str, *args: str, timeout: float):
    """Run ``script`` in a fresh, offline interpreter from the repository root (this one has long imported
    torch); the JSON of the last line it prints."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_building_the_app_imports_no_heavy_module(tmp_path):
    """A fresh interpreter builds the whole Blocks app."""
    assert run_fresh(BUILD, str(tmp_path), ",".join(HEAVY), timeout=300) == []

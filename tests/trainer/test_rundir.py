"""The run folder's one owner: the layout read back from a real finished run, and no torch behind it."""

from __future__ import annotations

import json
import subprocess
import sys

from trainer.rundir import RunDir, read_events, read_json, read_status, runs_in, write_json_atomic


def test_layout_of_a_finished_run(cv_run):
    run = RunDir(cv_run)
    assert run.config()["name"] == "tiny" and run.splits()["folds"]
    assert run.status()["state"] == "finished"
    assert run.events()[-1]["event"] == "run_end"
    folds = run.folds("resnet18")
    assert [(f.model, f.magnification, f.fold) for f in folds] == [("resnet18", "40X", 0), ("resnet18", "40X", 1)]
    assert all(f.finished and f.run == cv_run.name for f in run.folds())
    assert folds[1].metrics()["fold"] == 1 and folds[1].predictions_file.is_file()
    assert (folds[0].best / "adapter.json").is_file() and not folds[0].last.exists()  # last/ is dropped once done
    assert run.fold("resnet18", "40X", 1) == folds[1]
    assert run.folds("resnet18", "100X") == [] and run.folds(finished=False) == []
    assert "resnet18" in run.models(with_predictions=True) and run.has_results()
    assert json.loads(run.results_file("json").read_text())["rows"]


def test_unfinished_and_hidden_folders(tmp_path):
    run = RunDir(tmp_path / "r")
    (run.fold("m", "40X", 0).path).mkdir(parents=True)
    (run.path / "m" / "40X" / "foldnotes").mkdir()  # not a fold folder
    run.config_file.write_text("name: r\n")
    (tmp_path / ".exports").mkdir()
    assert [f.fold for f in run.folds()] == [0] and run.folds(finished=True) == [] and not run.has_results()
    assert [r.name for r in runs_in(tmp_path)] == ["r"] and run.is_run()
    assert runs_in(tmp_path / "missing") == [] and RunDir(tmp_path / "missing").config() == {}


def test_live_files_tolerate_torn_writes(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"event": "step"}\n{"event": "ep')
    assert read_events(tmp_path / "metrics.jsonl") == [{"event": "step"}]
    (tmp_path / "status.json").write_text('{"state": "runn')
    assert read_status(tmp_path) is None
    write_json_atomic(tmp_path / "status.json", {"state": "running", "pid": 2**22 + 12345, "x": float("nan")})
    assert read_json(tmp_path / "status.json")["x"] is None
    assert read_status(tmp_path)["state"] == "failed"  # claims running, but no such process


def test_imports_no_training_stack():
    code = "import sys, trainer.rundir; print(sorted(m for m in ('torch', 'numpy', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""Fitting the trust reference of an existing checkpoint (``trainer calibrate``): a run's fold, and an exported
model folder given its data and folds. Export keeps the reference (float32)."""

from __future__ import annotations

import json
import shutil

import pytest

from trainer.cli import main
from trainer.rundir import TRUST_ARRAYS, TRUST_FILE


def test_calibrate_a_run_fold_from_its_run_folder(cv_run, tmp_path, capsys):
    run = tmp_path / "tiny"
    shutil.copytree(cv_run, run)  # the shared run stays as it is
    best = run / "resnet18" / "40X" / "fold1" / "best"
    (best / TRUST_FILE).unlink()
    (best / TRUST_ARRAYS).unlink()
    assert main(["calibrate", str(best), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "trust reference saved" in out and "fold 1" in out and "flagged OOD" in out
    saved = json.loads((best / TRUST_FILE).read_text())
    assert saved["ood"]["threshold"] > 0 and saved["info"]["fold"] == 1 and saved["info"]["test"]["test_images"] > 0


def test_calibrate_an_exported_model_needs_its_data_and_folds(cv_run, tiny_data, tmp_path, capsys):
    from trainer.export import export_checkpoint
    from trainer.models import load_checkpoint

    exported = export_checkpoint(cv_run / "resnet18" / "40X" / "fold0" / "best", tmp_path / "app", dtype="float16")
    # The reference came along, its arrays left in float32.
    from safetensors.numpy import load_file

    assert all(a.dtype == "float32" for a in load_file(str(exported / TRUST_ARRAYS)).values())
    (exported / TRUST_FILE).unlink()
    (exported / TRUST_ARRAYS).unlink()
    assert load_checkpoint(exported, device="cpu").trust is None
    with pytest.raises(SystemExit):
        main(["calibrate", str(exported)])
    assert "--data" in capsys.readouterr().err
    args = ["calibrate", str(exported), "--data", str(tiny_data), "--splits", str(cv_run / "splits.json")]
    assert main([*args, "--set", "ood_quantile=0.9", "--threads", "1"]) == 0
    ckpt = load_checkpoint(exported, device="cpu")
    assert ckpt.trust is not None and ckpt.trust.ood.quantile == 0.9 and ckpt.trust.info["fold"] == 0

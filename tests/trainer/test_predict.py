"""``python -m trainer predict``: files, folders and manifests, one JSON line (or CSV row) per image with the
trust fields; a bad file is a row with its error, never a crash."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.trainer.trust import hostile
from trainer.cli import main


@pytest.fixture(scope="module")
def checkpoint(cv_run):
    return cv_run / "resnet18" / "40X" / "fold0" / "best"


@pytest.fixture
def folder(tmp_path, tiny_data):
    root = tmp_path / "in"
    root.mkdir()
    for src in sorted(Path(tiny_data).rglob("*.png"))[:3]:
        shutil.copy(src, root / src.name)
    good = next(Path(tiny_data).rglob("*.png")).read_bytes()
    (root / "corrupt.png").write_bytes(good[: len(good) // 2])  # a truncated PNG
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("side files are ignored")
    (root / "anim.gif").write_bytes(b"GIF89a" + b"\x00" * 16)
    hostile.blank_white().save(root / "white.png")
    hostile.one_pixel().save(root / "dot.png")
    return root


def _lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_folder_with_a_corrupt_file_gives_a_row_per_image(checkpoint, folder, capsys):
    assert main(["predict", str(checkpoint), str(folder), "--threads", "1"]) == 0
    rows = {Path(r["path"]).name: r for r in _lines(capsys)}
    assert set(rows) == {p.name for p in folder.iterdir() if p.suffix != ".txt"}
    assert "corrupt" in rows["corrupt.png"]["error"] and "empty" in rows["empty.png"]["error"], rows
    assert "unexpected file type" in rows["anim.gif"]["error"]
    good = [r for r in rows.values() if r["error"] is None]
    assert len(good) == 5
    for r in good:
        assert set(r["probs"]) == {"benign", "malignant"} and 0 <= r["prob_malignant"] <= 1
        assert r["label"] in ("benign", "malignant") and isinstance(r["ood_score"], float)
        assert isinstance(r["ood"], bool) and r["ood_threshold"] > 0
    assert rows["white.png"]["abstain"] == "no_tissue" and rows["dot.png"]["abstain"] == "too_small"
    assert "too small" in rows["dot.png"]["abstain_reason"]


def test_csv_from_a_manifest_with_tta(checkpoint, tiny_data, tmp_path):
    from trainer.data.sources import index_dataset, write_manifest

    records = index_dataset(tiny_data).records[:4]
    manifest = write_manifest(records, tmp_path / "m" / "manifest.csv", relative=False)
    with open(manifest, "a") as fh:
        fh.write(f"{tmp_path / 'gone.png'},benign,p9,,,\n")
    out = tmp_path / "out.csv"
    assert main(["predict", str(checkpoint), str(manifest), "--csv", "--tta", "--out", str(out), "--threads", "1"]) == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 5 and {"ood_score", "ood", "abstain_reason", "prob_benign", "tta_std"} <= set(rows[0])
    assert [r["true_label"] for r in rows[:4]] == [("benign", "malignant")[r.label] for r in records]
    assert rows[4]["path"].endswith("gone.png") and rows[4]["error"]
    assert all(float(r["tta_std"]) >= 0 for r in rows[:4])


def test_an_old_checkpoint_without_a_reference_still_predicts(checkpoint, folder, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(checkpoint, old)
    (old / "trust.json").unlink()
    (old / "trust.safetensors").unlink()
    assert main(["predict", str(old), str(folder / "white.png"), str(folder / "missing.png"), "--threads", "1"]) == 0
    captured = capsys.readouterr()
    white, missing = [json.loads(line) for line in captured.out.splitlines()]
    assert white["ood"] is None and white["ood_score"] is None and "no OOD reference" in white["notes"]
    assert white["abstain"] == "no_tissue" and missing["error"] == "file not found"
    assert "no OOD reference" in captured.err


def test_abstention_bounds_can_be_set(checkpoint, folder, capsys):
    args = ["predict", str(checkpoint), str(folder / "white.png"), "--threads", "1"]
    assert main([*args, "--set", "min_tissue_fraction=0"]) == 0
    assert _lines(capsys)[0]["abstain"] != "no_tissue"
    with pytest.raises(SystemExit):
        main([*args, "--set", "no_such_bound=1"])

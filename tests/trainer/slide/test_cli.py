"""``python -m trainer slide`` and ``slide-mosaic``: every output per slide, a bad slide among good ones reported
and skipped, a re-run continuing from the partial file."""

from __future__ import annotations

import csv
import json

import pytest

from tests.trainer.slide.conftest import DEMO_CNN
from trainer.cli import main


def test_slide_writes_every_output_and_reports_a_bad_slide(mosaic, tmp_path, capsys):
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide at all" * 10)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main(["slide", str(DEMO_CNN), str(bad), str(mosaic[0]), "--out", str(out), "--no-progress", "--context"])
    assert exit_.value.code == 1
    err = capsys.readouterr()
    assert "broken.svs: unsupported format" in err.err
    assert "9999.tif:" in err.out and "tissue" in err.out
    folder = out / "9999"
    for name in ("tiles.csv", "heatmap.png", "thumbnail.png", "regions.geojson", "summary.json"):
        assert (folder / name).is_file(), name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["context"] is True and summary["complete"] and summary["mpp_source"] == "metadata"
    with open(folder / "tiles.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == summary["tiles"]
    assert not (out / "broken").exists() or not any((out / "broken").iterdir())
    # a second call continues from the partial file: every tile is read back, none scored again
    assert main(["slide", str(DEMO_CNN), str(mosaic[0]), "--out", str(out), "--no-progress", "--context"]) == 0
    again = json.loads((folder / "summary.json").read_text())
    assert again["resumed_tiles"] == again["tiles"] == summary["tiles"]


def test_no_scale_is_one_line_naming_the_options(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (120, 120), (220, 150, 190)).save(tmp_path / "field.png")
    with pytest.raises(SystemExit):
        main(["slide", str(DEMO_CNN), str(tmp_path / "field.png"), "--out", str(tmp_path / "o"), "--no-progress"])
    assert "no scale: give --mpp or --magnification" in capsys.readouterr().err
    assert (
        main(
            [
                "slide",
                str(DEMO_CNN),
                str(tmp_path / "field.png"),
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
                "--mpp",
                "4",
            ]
        )
        == 0
    )


def test_slide_mosaic_command(patient_dir, tmp_path, capsys):
    assert main(["slide-mosaic", str(patient_dir), str(tmp_path / "p.tif")]) == 0
    assert (tmp_path / "p.tif").is_file() and (tmp_path / "p.patches.csv").is_file()
    assert "written" in capsys.readouterr().out

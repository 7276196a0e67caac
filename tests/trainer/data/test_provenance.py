"""Where a run's images came from: generated patches under ``source: breakhis`` are told from real BreakHis by
the dataset's marker or by the run's data report, and results keep the answer once the data is gone."""

from __future__ import annotations

import shutil

import yaml

from trainer.data.provenance import data_source, of_results, of_run
from trainer.data.sources import index_dataset
from trainer.data.synthetic import generate
from trainer.results import collect_results
from trainer.rundir import RunDir


def test_each_source_is_named_and_generated_data_is_never_called_real(tmp_path):
    gen = generate(tmp_path / "gen", patients_per_subtype=1, images_per_magnification=1, size=16)
    assert data_source({"source": "breakhis", "root": str(gen)}).label == "generated BreakHis-like"
    assert data_source({"source": "synthetic", "root": ""}).kind == "generated"
    assert data_source({"source": "breakhis", "root": str(tmp_path / "real")}).label == "real BreakHis"
    assert data_source({"source": "idc", "root": "x"}).label == "real IDC"
    assert data_source({"source": "folder", "root": "x"}).kind == "unknown"  # an annotated set may hold anything
    # "auto": the report says which source the folder was read as
    assert data_source({"source": "auto", "root": "x"}, {"source": "bach"}).label == "real BACH"


def test_a_run_on_generated_data_stays_generated_after_the_data_is_deleted(tmp_path):
    gen = generate(tmp_path / "gen", patients_per_subtype=1, images_per_magnification=1, size=16)
    run = RunDir(tmp_path / "runs" / "r")
    run.path.mkdir(parents=True)
    run.config_file.write_text(yaml.safe_dump({"name": "r", "data": {"source": "breakhis", "root": str(gen)}}))
    index_dataset(gen, "breakhis", verify="none").write_json(run.data_report_file)  # what the runner records
    shutil.rmtree(gen)

    assert of_run(run.path).label == "generated BreakHis-like"
    results = collect_results(run.path)
    assert results["data_source"] == {"kind": "generated", "dataset": "BreakHis", "label": "generated BreakHis-like"}
    # A results.json copied without its run folder (results/) keeps it.
    assert of_results({"data_source": results["data_source"], "config": {}}).kind == "generated"


def test_the_committed_results_say_what_they_were_trained_on():
    from histoapp.settings import PROJECT_ROOT
    from trainer.rundir import read_json

    for path in sorted((PROJECT_ROOT / "results").rglob("results.json")):
        res = read_json(path)
        if path.parent == PROJECT_ROOT / "results":
            want = "generated BreakHis-like"
        elif (PROJECT_ROOT / "results" / "breakhis100x") in path.parents:
            want = "real BreakHis"
        else:
            want = "real IDC"
        assert res["data_source"]["label"] == want, path

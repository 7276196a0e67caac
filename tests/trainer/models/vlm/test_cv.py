"""A VLM runs through the same experiment runner as a CNN: same run folder, same result files, and the
comparison tools work across a CNN run and a VLM run."""

import json

import pytest

from trainer.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig


def _cfg(name, out, root, model, **train):
    data = DataConfig(
        source="breakhis",
        root=str(root),
        magnifications=["40X"],
        folds=2,
        seed=1,
        val_fraction=0.2,
        input_size=32,
        num_workers=0,
    )
    return ExperimentConfig(
        name=name,
        output_dir=str(out),
        data=data,
        models=[model],
        train=TrainConfig(
            epochs=1, batch_size=8, lr=1e-3, max_steps=2, log_every=1, early_stopping_patience=0, **train
        ),
    )


def _files(run_dir, model):
    """Relative paths of the run's files, the model folder renamed, checkpoint contents left out."""
    out = set()
    for p in run_dir.rglob("*"):
        rel = p.relative_to(run_dir).as_posix()
        if p.is_file() and "/best/" not in rel:
            out.add(rel.replace(model + "/", "MODEL/"))
    return out


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, synthetic_root, tiny_vlms):
    from trainer.cv import run_experiment

    out = tmp_path_factory.mktemp("runs")
    cnn = ModelConfig(family="cnn", name="resnet18", pretrained=False)
    vlm = ModelConfig(family="vlm", name=str(tiny_vlms["idefics3"]), mode="lora", label="tiny-idefics3-lora")
    res_cnn = run_experiment(_cfg("cnn", out, synthetic_root, cnn), progress=False)
    res_vlm = run_experiment(_cfg("vlm", out, synthetic_root, vlm, optimizer="paged_adamw8bit"), progress=False)
    return out, res_cnn, res_vlm


def test_vlm_run_writes_the_same_files_as_a_cnn_run(two_runs):
    out, res_cnn, res_vlm = two_runs
    assert res_cnn["state"] == res_vlm["state"] == "finished"
    cnn_files, vlm_files = _files(out / "cnn", "resnet18"), _files(out / "vlm", "tiny-idefics3-lora")
    assert cnn_files == vlm_files
    for k in (0, 1):
        fold = out / "vlm" / "tiny-idefics3-lora" / "40X" / f"fold{k}"
        metrics = json.loads((fold / "metrics.json").read_text())
        assert 0 <= metrics["metrics"]["accuracy"] <= 1 and "roc_auc" in metrics["metrics"]
        assert json.loads((fold / "best" / "adapter.json").read_text())["family"] == "vlm"
    header = (out / "vlm" / "tiny-idefics3-lora" / "40X" / "fold0" / "predictions.csv").read_text().splitlines()[0]
    assert header == (out / "cnn" / "resnet18" / "40X" / "fold0" / "predictions.csv").read_text().splitlines()[0]
    events = [json.loads(line) for line in (out / "vlm" / "metrics.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "fold_start")
    assert 0 < start["trainable_params"] < start["total_params"]
    assert "tiny-idefics3-lora" in (out / "vlm" / "results.md").read_text()


def test_compare_across_a_cnn_and_a_vlm_run(two_runs, capsys):
    from trainer.cli import main
    from trainer.stats import compare_runs

    out, _, _ = two_runs
    res = compare_runs(out / "cnn", out / "vlm")
    assert res["a"]["model"] == "resnet18" and res["b"]["model"] == "tiny-idefics3-lora"
    row = res["rows"][0]
    assert row["magnification"] == "40X" and row["n_images"] > 0 and row["only_in_a"] == row["only_in_b"] == 0
    assert res["same_splits"] and 0 <= row["mcnemar"]["p_value"] <= 1
    main(["compare", str(out / "cnn"), str(out / "vlm")])
    assert "tiny-idefics3-lora" in capsys.readouterr().out


def test_zero_shot_fold_trains_nothing_and_still_reports(tmp_path, synthetic_root, tiny_vlms):
    from trainer.cv import run_experiment

    vlm = ModelConfig(family="vlm", name=str(tiny_vlms["qwen2_vl"]), mode="zero_shot")
    cfg = _cfg("zs", tmp_path, synthetic_root, vlm)
    cfg.data.folds_to_run = [0]
    res = run_experiment(cfg, progress=False)
    assert res["state"] == "finished"
    fold = tmp_path / "zs" / vlm.display_name / "40X" / "fold0"
    assert json.loads((fold / "metrics.json").read_text())["fit"]["global_step"] == 0
    assert (fold / "best" / "adapter.json").is_file()

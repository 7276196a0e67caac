"""``python -m trainer export``: a run's best fold as a compact app model, and a checkpoint copied standalone."""

import pytest
import torch
from safetensors.torch import load_file

from trainer.cli import main
from trainer.evaluate import load_checkpoint
from trainer.export import best_fold, export_run
from trainer.results import load_results
from trainer.rundir import RunDir


def test_export_run_writes_fp16_weights_that_load_as_float32_and_predict_the_same(tmp_path, cv_run):
    out = export_run(
        cv_run, "resnet18", "40X", tmp_path / "demo", title="Tiny demo", commands=["python -m trainer cv ..."]
    )
    k = best_fold(cv_run, "resnet18", "40X")
    src = RunDir(cv_run).fold("resnet18", "40X", k).best
    weights = load_file(str(out / "model.safetensors"))
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    assert (out / "model.safetensors").stat().st_size < 0.6 * (src / "model.safetensors").stat().st_size
    row = next(r for r in load_results(cv_run)["rows"] if r["model"] == "resnet18")
    card = (out / "card.md").read_text()
    assert "not a diagnostic device" in card and "python -m trainer cv" in card and "fp16 safetensors" in card
    assert f"{row['mean']['accuracy']:.3f} ± {row['std']['accuracy']:.3f}" in card
    full, _ = load_checkpoint(src, device="cpu")
    half, meta = load_checkpoint(out, device="cpu")
    assert meta["fold"] == k and meta["exported_from"] == f"tiny/resnet18/40X/fold{k}"
    assert all(p.dtype == torch.float32 for p in half.module.parameters())
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = full.module(x), half.module(x)
    assert torch.allclose(a, b, atol=5e-2 * max(1.0, a.abs().max().item() / 10))


def test_cli_exports_a_checkpoint_or_a_runs_best_fold(tmp_path, cv_run, capsys):
    fold = RunDir(cv_run).fold("resnet18", "40X", 0)
    assert main(["export", str(fold.path), str(tmp_path / "copy"), "--dtype", "bfloat16"]) == 0
    assert "exported to" in capsys.readouterr().out
    weights = load_file(str(tmp_path / "copy" / "model.safetensors"))
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.bfloat16}
    assert (tmp_path / "copy" / "engine.json").read_text() == (fold.best / "engine.json").read_text()
    with pytest.raises(SystemExit):  # two models in the run: which one must be said
        main(["export", str(cv_run), str(tmp_path / "app")])
    assert "name one with --model" in capsys.readouterr().err
    main(["export", str(cv_run), str(tmp_path / "app"), "--model", "mobilenet_v3_small", "--magnification", "40X"])
    assert (tmp_path / "app" / "card.md").is_file()


def test_card_says_how_training_was_thinned(tmp_path, cv_run):
    import shutil

    import yaml

    from trainer.export import model_card

    run = shutil.copytree(cv_run, tmp_path / "run")
    card = model_card(run, "resnet18", "40X", 0, title="t", commands=[])
    assert "data.subsample" not in card and "data.train_patients" not in card
    cfg = RunDir(run).config()
    cfg["data"].update(subsample=0.5, train_patients=0.33)
    RunDir(run).config_file.write_text(yaml.safe_dump(cfg))
    card = model_card(run, "resnet18", "40X", 0, title="t", commands=[])
    assert "kept 0.5 of each patient's images" in card and "trained on 0.33 of its training patients" in card


def test_card_of_a_one_fold_run_shows_no_spread_and_names_the_output_stride(tmp_path, cv_run):
    import shutil

    import yaml

    from trainer.export import model_card

    run = shutil.copytree(cv_run, tmp_path / "run")
    card = model_card(run, "resnet18", "40X", 0, title="t", commands=[])
    assert "mean ± std" in card and "output stride" not in card
    shutil.rmtree(RunDir(run).fold("resnet18", "40X", 1).path)  # as if only fold 0 had run (data.folds_to_run)
    cfg = RunDir(run).config()
    cfg["models"][0]["output_stride"] = 16
    RunDir(run).config_file.write_text(yaml.safe_dump(cfg))
    card = model_card(run, "resnet18", "40X", 0, title="t", commands=[])
    assert "only fold 0 of the" in card and "±" not in card and "mean ± std" not in card
    assert "output stride 16" in card

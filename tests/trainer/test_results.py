"""The paper-layout Markdown table: which of our models stands for which paper row, and what it says of weights."""

from __future__ import annotations

from trainer.metrics import METRICS
from trainer.results import results_markdown


def _row(model: str, paper_model: str | None) -> dict:
    stats = {m: 0.9 for m in METRICS}
    return {
        "model": model,
        "paper_model": paper_model,
        "magnification": "40X",
        "n_folds": 2,
        "folds": [0, 1],
        "mean": stats,
        "std": {m: 0.01 for m in METRICS},
        "paper": {"accuracy": 0.95} if paper_model else {},
    }


def _results(models: list[dict], rows: list[dict]) -> dict:
    return {
        "name": "r",
        "config": {"data": {"target": "label"}, "train": {}, "models": models},
        "rows": rows,
        "expected_folds": 2,
        "status": {"state": "finished"},
        "reference": {"citation": "Zhaksylyk et al."},
    }


def test_vlm_rows_name_our_model_and_the_paper_row_and_claim_no_imagenet_weights():
    md = results_markdown(
        _results(
            [{"family": "vlm", "name": "HuggingFaceTB/SmolVLM-256M-Instruct", "pretrained": True}],
            [_row("smolvlm-256m-lora", "SmolVLM (LoRA)")],
        )
    )
    assert "| smolvlm-256m-lora (paper: SmolVLM (LoRA)) | 40X |" in md
    assert "ImageNet weights" not in md


def test_cnn_rows_keep_the_paper_name_and_state_the_weights():
    md = results_markdown(
        _results(
            [{"family": "cnn", "name": "resnet34", "pretrained": False}],
            [_row("resnet34", "ResNet34"), _row("convnext_tiny", None)],
        )
    )
    assert "| ResNet34 | 40X |" in md and "| convnext_tiny | 40X |" in md
    assert "ImageNet weights: False." in md


def test_breakhis_floor_only_for_real_breakhis_and_the_dataset_is_named(tmp_path):
    from trainer.data.synthetic import GENERATED_MARKER

    models = [{"family": "cnn", "name": "resnet34", "pretrained": False}]

    def markdown(data: dict) -> str:
        res = _results(models, [_row("resnet34", "ResNet34")])
        res["config"]["data"] = {"target": "label", **data}
        return results_markdown(res)

    real = markdown({"source": "breakhis", "root": str(tmp_path / "breakhis")})
    assert "Sanity floor on the real BreakHis" in real and "40X accuracy 0.6" in real

    generated = tmp_path / "demo"
    generated.mkdir()
    (generated / GENERATED_MARKER).write_text("generated")
    for data, words in (
        ({"source": "breakhis", "root": str(generated)}, f"generated BreakHis-like (`{generated}`)"),
        ({"source": "synthetic", "root": str(generated)}, f"generated BreakHis-like (`{generated}`)"),
        ({"source": "folder", "root": "/data/idc-mini"}, "class folders (origin not recorded) (`/data/idc-mini`)"),
        ({"source": "idc", "root": "assets/data/idc-mini"}, "real IDC (`assets/data/idc-mini`)"),
    ):
        md = markdown(data)
        assert "Sanity floor on the real BreakHis" not in md
        assert f"No BreakHis sanity floor: this run's data is {words}" in md

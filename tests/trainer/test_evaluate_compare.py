"""``python -m trainer evaluate`` and ``compare`` from the command line, on the shared tiny CV run; ``evaluate``
also on a tiny IDC-layout folder and a tiny MANIFEST.csv folder with a constant-prediction checkpoint."""

from __future__ import annotations

import csv
import json

import pytest

from trainer.cli import main


def test_evaluate_cli_writes_predictions_and_metrics(cv_run, tiny_data, tmp_path, capsys):
    ckpt = cv_run / "resnet18" / "40X" / "fold0" / "best"
    out = tmp_path / "eval"
    assert (
        main(["evaluate", str(ckpt), str(tiny_data), "--magnification", "100X", "--out", str(out), "--threads", "1"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "32 images (0 skipped as problems), input 32 px" in printed and "Accuracy" in printed
    res = json.loads((out / "metrics.json").read_text())
    assert res["n"] == 32 and res["magnification"] == "100X" and res["input_size"] == 32
    assert res["trained_on"]["model"] == "resnet18" and res["trained_on"]["fold"] == 0
    rows = list(csv.DictReader((out / "predictions.csv").read_text().splitlines()))
    assert len(rows) == 32 and {r["magnification"] for r in rows} == {"100X"}
    y = [int(r["label"]) for r in rows]
    pred = [int(float(r["prob_malignant"]) >= 0.5) for r in rows]
    assert res["metrics"]["accuracy"] == pytest.approx(sum(a == b for a, b in zip(y, pred, strict=True)) / 32)
    # The share flagged OOD and the metrics on the images kept (the checkpoint has a trust reference).
    assert "flagged OOD:" in printed and "not OOD" in printed
    trust = res["trust"]
    assert 0.0 <= trust["ood_share"] <= 1.0 and trust["n_in_distribution"] == round(32 * (1 - trust["ood_share"]))
    assert res["metrics_in_distribution"]["n"] == trust["n_in_distribution"]
    assert res["metrics_answered"]["n"] == trust["n_answered"]
    assert {"ood_score", "ood", "abstain"} <= set(rows[0])


def test_evaluate_with_stain_normalisation_on_and_off(cv_run, tiny_data, tmp_path, capsys):
    """The cross-dataset test with stain normalisation on and off: "macenko" normalises every image before the
    model (other probabilities, said in the output and metrics.json); "none" is the model as trained."""
    ckpt = cv_run / "resnet18" / "40X" / "fold0" / "best"
    probs = {}
    for stain in ("none", "macenko"):
        out = tmp_path / stain
        args = ["evaluate", str(ckpt), str(tiny_data), "--magnification", "100X", "--out", str(out)]
        assert main([*args, "--stain-normalization", stain, "--threads", "1"]) == 0
        assert f"stain normalisation {stain}" in capsys.readouterr().out
        res = json.loads((out / "metrics.json").read_text())
        assert res["stain_normalization"] == (None if stain == "none" else stain)
        probs[stain] = [float(r["prob_malignant"]) for r in csv.DictReader((out / "predictions.csv").open())]
    assert len(probs["none"]) == len(probs["macenko"]) == 32
    assert max(abs(a - b) for a, b in zip(probs["none"], probs["macenko"], strict=True)) > 1e-4
    from trainer.evaluate import evaluate_checkpoint

    with pytest.raises(ValueError, match="must be one of macenko, reinhard or none"):
        evaluate_checkpoint(ckpt, tiny_data, out_dir=tmp_path / "bad", stain_normalization="vahadane")
    assert not (tmp_path / "bad").exists()  # refused before any image was read or file written


def test_evaluate_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(tmp_path / "nope"), str(tmp_path)])
    assert exc.value.code == 2
    assert "error: checkpoint folder not found" in capsys.readouterr().err


def test_compare_cli_two_models_of_one_run(cv_run, tmp_path, capsys):
    out = tmp_path / "cmp.json"
    assert (
        main(
            [
                "compare",
                str(cv_run),
                str(cv_run),
                "--model-a",
                "resnet18",
                "--model-b",
                "mobilenet_v3_small",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| Magnification | Images | Acc. A | Acc. B | McNemar p | AUC A | AUC B | DeLong p |" in printed
    res = json.loads(out.read_text())
    assert res["same_splits"] is True
    (row,) = res["rows"]
    assert row["magnification"] == "40X" and row["n_images"] == 32 and row["folds"] == [0, 1]
    assert 0.0 <= row["mcnemar"]["p_value"] <= 1.0 and row["mcnemar"]["n"] == 32
    assert set(row["wilcoxon"]) == {"accuracy", "f1", "roc_auc"}

    # The McNemar counts agree with the two runs' predictions.
    def correct(model):
        rows = {}
        for k in (0, 1):
            for r in csv.DictReader((cv_run / model / "40X" / f"fold{k}" / "predictions.csv").read_text().splitlines()):
                rows[r["image_id"]] = r["pred"] == r["label"]
        return rows

    a, b = correct("resnet18"), correct("mobilenet_v3_small")
    assert row["mcnemar"]["a_only"] == sum(a[i] and not b[i] for i in a)
    assert row["mcnemar"]["b_only"] == sum(b[i] and not a[i] for i in a)


def test_compare_needs_two_different_models(cv_run, capsys):
    with pytest.raises(SystemExit):
        main(["compare", str(cv_run), str(cv_run)])
    assert "holds several models" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", str(cv_run), str(cv_run), "--model-a", "resnet18", "--model-b", "resnet18"])
    assert "two different models" in capsys.readouterr().err


def _always_malignant_checkpoint(folder):
    """A ResNet18 checkpoint (32 px) whose head ignores the image: P(malignant) = sigmoid(1) for every input, so
    every metric has a known value on any data."""
    import torch

    from trainer.config import ModelConfig
    from trainer.models.cnn import CNNAdapter

    adapter = CNNAdapter(ModelConfig(name="resnet18", pretrained=False), 2)
    adapter.transform(False, 32)
    with torch.no_grad():
        adapter.module.fc.weight.zero_()
        adapter.module.fc.bias.copy_(torch.tensor([0.0, 1.0]))
    adapter.save(folder / "best")
    (folder / "best" / "engine.json").write_text(
        json.dumps({"classes": ["benign", "malignant"], "input_size": 32, "fold": 0, "model": "resnet18"})
    )
    return folder / "best"


def _expected_always_malignant(patients: dict[str, tuple[int, int]]) -> dict:
    benign = sum(b for b, _ in patients.values())
    malignant = sum(m for _, m in patients.values())
    share = malignant / (benign + malignant)
    return {
        "accuracy": share,
        "balanced_accuracy": 0.5,
        "f1": 2 * share / (1 + share),
        "roc_auc": 0.5,
        "recall": 1.0,
        "specificity": 0.0,
        # Each patient counts once, whatever its number of patches: the mean of the per-patient shares right.
        "patient_accuracy": sum(m / (b + m) for b, m in patients.values()) / len(patients),
    }


def _check_evaluate_output(printed: str, res: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert res["metrics"][key] == pytest.approx(value), key
    for name, key in (
        ("Accuracy", "accuracy"),
        ("Balanced acc.", "balanced_accuracy"),
        ("F1", "f1"),
        ("AUC", "roc_auc"),
    ):
        # The first figure column is every image's ("all"; then "not OOD" and "answered").
        assert any(line.startswith(f"  {name:<15} {expected[key]:>8.4f}") for line in printed.splitlines()), name


def test_evaluate_on_an_idc_layout_folder(tmp_path, capsys):
    from tests.trainer.data.conftest import IDC_PATIENTS, write_idc

    ckpt = _always_malignant_checkpoint(tmp_path / "fold0")
    data = write_idc(tmp_path / "idc", IDC_PATIENTS, manifest=True)  # + two slide-edge tiles, too small
    out = tmp_path / "eval"
    assert main(["evaluate", str(ckpt), str(data), "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    n = sum(b + m for b, m in IDC_PATIENTS.values())
    assert (
        f"{n} images (2 skipped as problems), input 32 px, stain normalisation none; 6 patients, source idc" in printed
    )
    assert "labels per patch: patient acc." in printed
    res = json.loads((out / "metrics.json").read_text())
    assert res["source"] == "idc" and res["label_level"] == "patch" and res["n"] == n and res["patients"] == 6
    expected = _expected_always_malignant(IDC_PATIENTS)
    assert expected["patient_accuracy"] != pytest.approx(expected["accuracy"])  # per patient, not pooled
    _check_evaluate_output(printed, res, expected)
    rows = list(csv.DictReader((out / "predictions.csv").read_text().splitlines()))
    assert len(rows) == n and {r["magnification"] for r in rows} == {"40X"}
    assert {r["patient_id"] for r in rows} == set(IDC_PATIENTS) and {r["pred"] for r in rows} == {"1"}
    # The slide coordinates from the names are kept, and every patch is also scored with its neighbours.
    from trainer.data.sources import parse_idc_name

    assert all((int(r["x"]), int(r["y"])) == parse_idc_name(r["path"])[1:3] for r in rows)
    ctx = res["metrics_context"]
    assert ctx["radius"] == 1 and ctx["n"] == n and "with slide context" in printed
    assert ctx["balanced_accuracy"] == pytest.approx(0.5)  # a constant model's neighbours are constant too
    # One fold's test patients only; a patient the folder lacks is a clear error.
    assert main(["evaluate", str(ckpt), str(data), "--out", str(tmp_path / "two"), "--patients", "8863, 8916"]) == 0
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["patients"] == 2 and two["n"] == sum(sum(IDC_PATIENTS[p]) for p in ("8863", "8916"))
    with pytest.raises(SystemExit):
        main(["evaluate", str(ckpt), str(data), "--out", str(tmp_path / "x"), "--patients", "8863,1234"])
    assert "no images of patient(s) 1234" in capsys.readouterr().err


def test_evaluate_on_a_plain_folder_with_an_upper_case_manifest(tmp_path, capsys):
    from PIL import Image

    ckpt = _always_malignant_checkpoint(tmp_path / "fold0")
    patients = {"case-a": (3, 0), "case-b": (0, 2), "case-c": (4, 0), "case-d": (0, 3)}  # one class each
    data = tmp_path / "scans"
    (data / "images").mkdir(parents=True)
    rows = ["path,label,patient_id"]
    for k, (pid, (b, m)) in enumerate(patients.items()):
        for i, label in enumerate(["benign"] * b + ["malignant"] * m):
            name = f"images/{pid}_{i}.png"
            Image.new("RGB", (40, 40), (30 * k, 20 * i, 200 if label == "malignant" else 100)).save(data / name)
            rows.append(f"{name},{label},{pid}")
    (data / "MANIFEST.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "eval"
    assert main(["evaluate", str(ckpt), str(data), "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "12 images (0 skipped as problems), input 32 px, stain normalisation none; 4 patients, source csv" in printed
    assert "labels per patch" not in printed
    res = json.loads((out / "metrics.json").read_text())
    assert res["source"] == "csv" and res["label_level"] == "patient"
    _check_evaluate_output(printed, res, _expected_always_malignant(patients))
    assert res["metrics"]["patient_accuracy"] == pytest.approx(0.5)  # two patients all right, two all wrong
    assert res["metrics_context"] is None and "with slide context" not in printed  # no slide coordinates
    assert "x" not in list(csv.DictReader((out / "predictions.csv").read_text().splitlines()))[0]

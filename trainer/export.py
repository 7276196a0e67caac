"""Standalone model folders (``python -m trainer export``): a checkpoint copied with its weights optionally cast
(``float16``: half the size; ``CNNAdapter.load`` casts back to float32) and, for a VLM, its LoRA merged into the
base weights; or a finished run's best fold packaged as an app model (``assets/models/<name>/``) with a
``card.md`` made from the run's own config and measured cross-validation results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from trainer.results import METRICS, load_results
from trainer.rundir import ADAPTER_FILE, ENGINE_META, TRUST_ARRAYS, TRUST_FILE, RunDir, checkpoint_family
from trainer.slide.scale import scale_meta

# What each data source is, for a card: what the model learnt from (and so what its answers mean).
DATASET_TEXT = {
    "synthetic": "**generated** BreakHis-like patches (`trainer.data.synthetic`: H&E-like colours, malignant patches "
    "with denser, larger, irregular nuclei; benign with glands). No real BreakHis images were available when it was "
    "trained, so its answers on real patches are not meaningful.",
    "idc": "**real H&E**: the IDC breast-cancer patches (50x50 px at 40x, cut from whole-slide images; Janowczyk & "
    "Madabhushi, J Pathol Inform 2016, doi:10.4103/2153-3539.186902; Cruz-Roa et al., SPIE Medical Imaging 2014, "
    "doi:10.1117/12.2043872), labelled per patch: **malignant = invasive ductal carcinoma in the patch, benign = no "
    "IDC in the patch** (not a benign tumour: every patient had cancer). Folds group patches by patient.",
}
DISCLAIMER = (
    "**Demo model — not a diagnostic device.** It shows how the app and the trainer work; it must not be "
    "used for clinical decisions."
)


_DTYPE_NAMES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", None: "fp32"}


def best_fold(run_dir: Path, model: str, magnification: str, metric: str = "roc_auc") -> int:
    """The fold with the highest test ``metric`` (ties: accuracy, then the lower fold)."""
    results = load_results(run_dir)
    rows = [r for r in results["rows"] if r["model"] == model and r["magnification"] == magnification]
    if not rows or not rows[0]["per_fold"]:
        raise ValueError(f"{run_dir}: no finished fold for model {model!r} at {magnification}")
    folds = rows[0]["per_fold"]
    return max(folds, key=lambda f: (f.get(metric) or 0.0, f.get("accuracy") or 0.0, -f["fold"]))["fold"]


def cast_copy(src: Path, dst: Path, dtype: str | None = "float16") -> Path:
    """Copy a checkpoint folder, storing every floating safetensors tensor as ``dtype`` (float16 halves the size)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    if dtype is None:
        return dst
    to = getattr(torch, dtype)
    for f in dst.rglob("*.safetensors"):
        if f.name == TRUST_ARRAYS:
            continue  # the OOD reference stays float32 (its precision matrix needs the range)
        state = load_file(str(f))
        save_file(
            {k: (v.to(to) if v.is_floating_point() else v).contiguous() for k, v in state.items()},
            str(f),
            metadata={"format": "pt", "dtype": dtype},
        )
    return dst


def export_checkpoint(checkpoint: str | Path, out: str | Path, *, dtype: str | None = None) -> Path:
    """A standalone copy of a checkpoint folder (``.../fold<k>/best`` or its fold folder): a VLM's LoRA merged
    into its base (``VLMAdapter.export``), a CNN's weights copied; both cast to ``dtype`` when given. The
    training metadata (``engine.json``) comes along."""
    from trainer.models import checkpoint_folder, load_checkpoint

    src, out = checkpoint_folder(checkpoint), Path(out)
    if checkpoint_family(src) == "vlm":
        out = load_checkpoint(src, device="cpu").adapter.export(out, dtype=dtype)
    elif checkpoint_family(src) is not None:
        cast_copy(src, out, dtype)
    else:
        raise FileNotFoundError(f"not a checkpoint folder (no {ADAPTER_FILE} naming the model family): {src}")
    for name in (ENGINE_META, TRUST_FILE, TRUST_ARRAYS):  # training metadata and the trust reference come along
        if (src / name).is_file() and not (out / name).is_file():
            shutil.copy2(src / name, out / name)
    return out


def model_card(
    run_dir: Path,
    model: str,
    magnification: str,
    fold: int,
    *,
    title: str,
    commands: list[str],
    notes: str = "",
    dtype: str | None = "float16",
    fold_reason: str = "highest test ROC-AUC",
    scale: dict | None = None,
) -> str:
    results = load_results(run_dir)
    cfg = results.get("config") or {}
    data, train = cfg.get("data", {}), cfg.get("train", {})
    mcfg = next((m for m in cfg.get("models", []) if (m.get("label") or m.get("name")) == model), {})
    row = next(r for r in results["rows"] if r["model"] == model and r["magnification"] == magnification)
    source = data.get("source")
    data_text = DATASET_TEXT.get(source, f"`{source}` data at `{data.get('root')}`")
    if data.get("subsample"):
        data_text += (
            f" Training and validation kept {data['subsample']:g} of each patient's images of each class "
            "(`data.subsample`); test folds were scored on every image."
        )
    if data.get("train_patients"):
        data_text += (
            f" Each fold trained on {data['train_patients']:g} of its training patients, whole (`data.train_patients`)."
        )
    if isinstance(data.get("root"), list):
        data_text += f" Folders, indexed as one dataset: {', '.join(f'`{r}`' for r in data['root'])}."
    init = f"; initialised from `{mcfg['init_from']}`" if mcfg.get("init_from") else ""
    init += f"; output stride {mcfg['output_stride']}" if mcfg.get("output_stride") else ""
    folds = row["per_fold"]
    # A run of one fold has no spread: a "mean ± 0.000" column would read as five agreeing folds.
    heading, spread = (
        ("## Cross-validation results (measured, test folds)", True)
        if len(folds) > 1
        else (
            f"## Test-fold results (measured; only fold {folds[0]['fold']} of the {data.get('folds')} was run)",
            False,
        )
    )
    lines = [
        f"# {title}",
        "",
        DISCLAIMER,
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{mcfg.get('name', model)}` ({mcfg.get('family', '?')}, mode {mcfg.get('mode', 'full')}, "
        f"pretrained: {str(mcfg.get('pretrained', '?')).lower()}{init}) |",
        f"| data | {data_text} |",
        f"| magnification | {magnification} · input {data.get('input_size')} px · target `{data.get('target')}` |",
        *(
            [
                f"| scale | one input covers {scale['patch_um']:g} µm ({scale['patch_px']} px at {scale['mpp']:g} µm/px); "
                "whole slides are tiled to match (`trainer slide`, docs/slide.md) |"
            ]
            if scale
            else []
        ),
        f"| protocol | {data.get('folds')}-fold patient-level cross-validation (seed {data.get('seed')}), validation share "
        f"{data.get('val_fraction')} of each fold's training patients, best epoch on validation loss |",
        f"| training | {train.get('epochs')} epochs, batch {train.get('batch_size')}, {train.get('optimizer')} lr {train.get('lr')}, "
        f"{train.get('scheduler')} schedule |",
        f"| weights | fold {fold} ({fold_reason}), stored as {_DTYPE_NAMES.get(dtype, dtype)} safetensors |",
        f"| knowing when not to answer | {_trust_line(RunDir(run_dir).fold(model, magnification, fold).best)} |",
        "",
        heading,
        "",
        "| metric |"
        + (" mean ± std |" if spread else "")
        + " "
        + " | ".join(f"fold {f['fold']}" for f in folds)
        + " |",
        "|---|" + ("---|" if spread else "") + "---|" * len(folds),
    ]
    for m in METRICS:
        mean, std = row["mean"].get(m), row["std"].get(m)
        if mean is None:
            continue
        cells = " | ".join("—" if f.get(m) is None else f"{f[m]:.3f}" for f in folds)
        lines.append(f"| {m} | " + (f"{mean:.3f} ± {(std or 0.0):.3f} | " if spread else "") + f"{cells} |")
    lines += [
        "",
        f"Training time: {row.get('train_time_s', 0.0) / 60:.1f} min in total.",
        "",
        "## How it was made",
        "",
        "```bash",
        *commands,
        "```",
    ]
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"


def _trust_line(checkpoint: Path) -> str:
    from trainer.trust.reference import TrustReference, describe

    return describe(TrustReference.load(checkpoint)) + " (`trainer.trust`)"


def export_run(
    run_dir: str | Path,
    model: str,
    magnification: str,
    out: str | Path,
    *,
    title: str,
    fold: int | None = None,
    commands: list[str] | None = None,
    notes: str = "",
    dtype: str | None = "float16",
) -> Path:
    """A finished run's fold (default: the best on test ROC-AUC) as a compact app model with its card."""
    run_dir, out = Path(run_dir), Path(out)
    fold_reason = "highest test ROC-AUC" if fold is None else "named with --fold"
    fold = best_fold(run_dir, model, magnification) if fold is None else fold
    src = RunDir(run_dir).fold(model, magnification, fold).best
    if not (src / ADAPTER_FILE).is_file():
        raise FileNotFoundError(f"no checkpoint in {src}")
    out = export_checkpoint(src, out, dtype=dtype)
    meta_path = out / ENGINE_META
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta.update({"fold": fold, "exported_from": f"{run_dir.name}/{model}/{magnification}/fold{fold}"})
    meta.update(scale_meta(meta))  # what one input covers: mpp, patch_px, patch_um (trainer.slide.scale)
    meta_path.write_text(json.dumps(meta, indent=1))
    (out / "card.md").write_text(
        model_card(
            run_dir,
            model,
            magnification,
            fold,
            title=title,
            commands=commands or [],
            notes=notes,
            dtype=dtype,
            fold_reason=fold_reason,
            scale=scale_meta(meta),
        )
    )
    return out

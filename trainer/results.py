"""Experiment results from a run folder: collect each finished fold's ``metrics.json``, aggregate mean ± std
per model x magnification, and write ``results.json`` / ``results.csv`` / ``results.md`` (the paper's table
layout with its published figures beside ours). The Dashboard reads them through ``load_results``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from trainer.data import provenance
from trainer.data.records import MAGNIFICATIONS
from trainer.metrics import METRIC_NAMES, METRICS, aggregate
from trainer.reference import floor, paper, paper_figures, paper_model
from trainer.rundir import RunDir, write_json_atomic, write_text_atomic

PAPER_COLUMNS = ("accuracy", "precision", "recall", "f1", "roc_auc")
EXTRA_COLUMNS = ("specificity", "balanced_accuracy", "patient_accuracy", "ece")


def _mag_key(mag: str) -> int:
    return MAGNIFICATIONS.index(mag) if mag in MAGNIFICATIONS else len(MAGNIFICATIONS)


def collect_results(run_dir: str | Path, model_order: list[str] | None = None) -> dict:
    """Aggregate every finished fold below ``run_dir`` (works on a live run)."""
    run = RunDir(run_dir)
    groups: dict[tuple[str, str], list[dict]] = {}
    for fold in run.folds(finished=True):
        rec = fold.metrics()
        if rec is None:
            continue  # a torn file is rewritten when its fold re-runs
        groups.setdefault((rec["model"], rec["magnification"]), []).append(rec)
    order = {m: i for i, m in enumerate(model_order or [])}
    rows = []
    for (model, mag), recs in sorted(
        groups.items(), key=lambda kv: (order.get(kv[0][0], len(order)), kv[0][0], _mag_key(kv[0][1]))
    ):
        recs.sort(key=lambda r: r["fold"])
        mean, std = aggregate([r["metrics"] for r in recs])
        rows.append(
            {
                "model": model,
                "paper_model": paper_model(model),
                "magnification": mag,
                "n_folds": len(recs),
                "folds": [r["fold"] for r in recs],
                "mean": mean,
                "std": std,
                "paper": paper_figures(model, mag),
                "per_fold": [{"fold": r["fold"], **{m: r["metrics"].get(m) for m in METRICS}} for r in recs],
                "train_time_s": sum((r.get("fit") or {}).get("train_time_s") or 0.0 for r in recs),
            }
        )
    config = run.config()
    return {
        "name": config.get("name", run.name),
        "run_dir": str(run.path),
        "status": run.status(),
        "config": config,
        "data_source": provenance.of_run(run.path).to_json(),
        "expected_folds": _expected_folds(config),
        "rows": rows,
        "reference": {"citation": paper()["citation"]},
    }


def _expected_folds(config: dict) -> int | None:
    try:
        data = config["data"]
        per = len(data["folds_to_run"]) if data.get("folds_to_run") else int(data["folds"])
        return per * len(data["magnifications"]) * len(config["models"])
    except (KeyError, TypeError):
        return None


def partial_mark(state: str | None, done: int, expected: int | None) -> str:
    """``""`` for a run that finished its whole grid (``done`` of ``expected`` folds); else what a model or result
    from it must say: ``stopped / partial`` (``failed / partial``, ``running / partial`` ...)."""
    if state == "finished" and (expected is None or done >= expected):
        return ""
    return f"{state or 'unknown'} / partial"


def run_partial_mark(run_dir: str | Path) -> str:
    """``partial_mark`` of a run folder, from its status and finished folds (cheap: no metrics are aggregated)."""
    run = RunDir(run_dir)
    return partial_mark((run.status() or {}).get("state"), len(run.folds(finished=True)), _expected_folds(run.config()))


def results_partial_mark(results: dict) -> str:
    """``partial_mark`` of a ``results.json`` (a run's, or one committed without its folder)."""
    done = sum(r["n_folds"] for r in results["rows"])
    return partial_mark((results.get("status") or {}).get("state"), done, results.get("expected_folds"))


def load_results(run_dir: str | Path) -> dict:
    """The run's results, always up to date with its finished folds (the Dashboard's entry point)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    return collect_results(
        run_dir, [m.get("label") or m.get("name") for m in RunDir(run_dir).config().get("models", [])] or None
    )


def write_results(run_dir: str | Path, results: dict) -> dict[str, Path]:
    run = RunDir(run_dir)
    return {
        "json": write_json_atomic(run.results_file("json"), results),
        "csv": write_text_atomic(run.results_file("csv"), results_csv(results)),
        "md": write_text_atomic(run.results_file("md"), results_markdown(results)),
    }


def results_csv(results: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["model", "magnification", "n_folds"]
        + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
        + [f"paper_{m}" for m in PAPER_COLUMNS]
    )
    for r in results["rows"]:
        w.writerow(
            [r["model"], r["magnification"], r["n_folds"]]
            + [_num(r[s][m]) for m in METRICS for s in ("mean", "std")]
            + [_num(r["paper"].get(m)) for m in PAPER_COLUMNS]
        )
    return buf.getvalue()


def _num(v) -> str:
    return "" if v is None else f"{v:.6f}"


def _cell(mean, std) -> str:
    if mean is None:
        return "—"
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"


def model_cell(row: dict) -> str:
    """Our model label, with the paper's row name beside it when the figures in brackets come from that row
    (a label is matched by its words, so the reader must see which of our models stands for which of the paper's)."""
    paper_name = row.get("paper_model")
    if not paper_name or paper_name.lower() == row["model"].lower():
        return paper_name or row["model"]
    return f"{row['model']} (paper: {paper_name})"


def results_markdown(results: dict) -> str:
    cfg = results.get("config") or {}
    data, train = cfg.get("data", {}), cfg.get("train", {})
    done = sum(r["n_folds"] for r in results["rows"])
    exp = results.get("expected_folds")
    state = (results.get("status") or {}).get("state", "?")
    lines = [f"# {results['name']}: cross-validation results", ""]
    lines.append(
        f"Folds finished: {done}" + (f" of {exp}" if exp else "") + f" (run state: {state}). "
        f"Data: **{provenance.of_results(results).label}**, `{data.get('source', '?')}` at `{' + '.join(provenance.roots_of(data)) or '?'}`, target `{data.get('target', '?')}`, "
        f"{data.get('folds', '?')}-fold patient-level CV, input {data.get('input_size', '?')} px; "
        f"{train.get('epochs', '?')} epochs, batch {train.get('batch_size', '?')}, lr {train.get('lr', '?')}"
        + (f", max {train['max_steps']} steps per fold" if train.get("max_steps") else "")
        + "."
    )
    # ImageNet weights concern the CNNs only; a VLM starts from its own (hub or local) weights.
    pretrained = sorted({str(m.get("pretrained")) for m in cfg.get("models", []) if m.get("family", "cnn") == "cnn"})
    if pretrained:
        lines[-1] += f" ImageNet weights: {', '.join(pretrained)}."
    lines += [
        "",
        "Test-set metrics, mean ± sample std over folds. In brackets: the paper's published figure where it gives one.",
        "",
    ]
    head = ["Model", "Magnification"] + [METRIC_NAMES[m] for m in PAPER_COLUMNS] + ["Folds"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results["rows"]:
        cells = []
        for m in PAPER_COLUMNS:
            c = _cell(r["mean"][m], r["std"][m])
            if m in r["paper"]:
                c += f" ({r['paper'][m]:.4f})"
            cells.append(c)
        lines.append(f"| {model_cell(r)} | {r['magnification']} | " + " | ".join(cells) + f" | {r['n_folds']} |")
    lines += [
        "",
        "Further metrics (mean ± std): specificity, balanced accuracy, patient-level accuracy (BreakHis patient "
        "recognition rate), expected calibration error (15 bins).",
        "",
    ]
    head = ["Model", "Magnification"] + [METRIC_NAMES[m] for m in EXTRA_COLUMNS]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results["rows"]:
        lines.append(
            f"| {model_cell(r)} | {r['magnification']} | "
            + " | ".join(_cell(r["mean"][m], r["std"][m]) for m in EXTRA_COLUMNS)
            + " |"
        )
    mags = sorted({r["magnification"] for r in results["rows"]}, key=_mag_key)
    floors = [floor(m) for m in mags if floor(m)]
    if data.get("target", "label") != "label":
        floors = []
    if floors and not _real_breakhis(results):
        # The floor is BreakHis's class balance: comparing another dataset's scores with it would mislead.
        words = f"{provenance.of_results(results).label} (`{' + '.join(provenance.roots_of(data)) or '?'}`)"
        lines += ["", f"No BreakHis sanity floor: this run's data is {words}, not the real BreakHis."]
    elif floors:
        lines += [
            "",
            "Sanity floor on the real BreakHis (always predicting malignant; from the class fractions, not from the paper): "
            + "; ".join(f"{f['magnification']} accuracy {f['accuracy']:.4f}, F1 {f['f1']:.4f}" for f in floors)
            + ".",
        ]
    lines += ["", f"Paper: {results['reference']['citation']}", ""]
    return "\n".join(lines)


def _real_breakhis(results: dict) -> bool:
    src = provenance.of_results(results)
    return src.kind == "real" and src.dataset == provenance.DATASETS["breakhis"]

"""The explanation checks' tables for the app (issue 27): ``trainer explain-eval``'s table (method x model: ROAD
combined, deletion / insertion AUC, sanity-check correlation, pointing, time per image) for the Dashboard, found
in the committed ``results/explain/`` and in run folders; and each method's verdict for a model, which marks the
Predict tab's method picker. Reading and judging a table is the trainer's (``trainer.explain.report``); this
module only finds the tables and lays them out."""

from __future__ import annotations

from pathlib import Path

from histoapp.settings import PROJECT_ROOT

EXPLAIN_DIR = PROJECT_ROOT / "results" / "explain"  # committed tables (results/explain/README.md: the commands)
RUN_EXPLAIN = "explain"  # <run>/explain/*.json: explain-eval run on a run's held-out folds
FAILED_BOTH = "failed faithfulness and sanity checks"
COLUMNS = {  # a table row's key -> the Dashboard's column
    "method": "method",
    "model": "model",
    "road_combined": "ROAD combined (higher: more faithful)",
    "deletion_auc": "deletion AUC (lower: better)",
    "insertion_auc": "insertion AUC (higher: better)",
    "sanity": "sanity: rank corr. after randomising (lower: better)",
    "pointing": "map mass in the lesion",
    "seconds_per_image": "s / image",
}


def _readable(path: Path) -> bool:
    from trainer.explain.report import load_table

    try:
        return bool(load_table(path))
    except (OSError, ValueError, KeyError, TypeError):  # not a table (another JSON file), or damaged
        return False


def tables(runs_dir: Path | None = None, root: Path = EXPLAIN_DIR) -> dict[str, Path]:
    """Every explain-eval table there is: the committed ones (``results/explain/...``), then the runs' (``<run>/
    explain/...``); label -> file."""
    found: dict[str, Path] = {}
    if root.is_dir():
        for f in sorted(root.rglob("*.json")):
            if _readable(f):
                found[f"results/explain/{f.relative_to(root).as_posix()}"] = f
    if runs_dir is not None and Path(runs_dir).is_dir():
        for f in sorted(Path(runs_dir).glob(f"*/{RUN_EXPLAIN}/*.json")):
            if _readable(f):
                found[f"run {f.parent.parent.name}: {f.name}"] = f
    return found


def table_rows(path: Path) -> list[list]:
    """The table's rows in ``COLUMNS`` order (numbers rounded for the screen, — where a measure is missing)."""
    from trainer.explain.report import load_table

    def cell(v):
        if v is None:
            return "—"
        return round(float(v), 3) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)

    return [[cell(row.get(k)) for k in COLUMNS] for row in load_table(path)]


def verdicts_for(names: set[str], root: Path = EXPLAIN_DIR) -> dict[str, dict]:
    """``{method: {"faithful": bool, "sane": bool}}`` from the committed tables whose rows name one of ``names``
    (the model's registry key, name or folder); {} when no table measured this model."""
    from trainer.explain.report import load_table, method_verdicts

    out: dict[str, dict] = {}
    for path in tables(None, root).values():
        if any(str(row.get("model")) in names for row in load_table(path)):
            out.update(method_verdicts(path))
    return out


def marked(methods, verdicts: dict[str, dict]) -> list[tuple[str, str]]:
    """The method picker's (label, value) pairs: a method that passed neither test says so in its label."""

    def label(m: str) -> str:
        v = verdicts.get(m)
        return f"{m} ({FAILED_BOTH})" if v and not v.get("faithful") and not v.get("sane") else m

    return [(label(m), m) for m in methods]

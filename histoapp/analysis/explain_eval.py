"""The explanation checks' tables for the app (issue 27): ``trainer explain-eval``'s table (method x model: ROAD
combined, deletion / insertion AUC, sanity-check correlation, pointing, time per image) for the Dashboard, found
in the committed ``results/explain/`` and in run folders; and each method's verdict for a model, which marks the
Predict tab's method picker. Reading, judging and laying out a table is the trainer's (``trainer.explain.report``:
``load_table``, ``method_verdicts``, ``markdown``); this module only finds the tables."""

from __future__ import annotations

from pathlib import Path

from histoapp.settings import PROJECT_ROOT

EXPLAIN_DIR = PROJECT_ROOT / "results" / "explain"  # committed tables (their README.md: the commands)
FAILED_BOTH = "failed faithfulness and sanity checks"


def _readable(path: Path) -> bool:
    from trainer.explain.report import load_table

    try:
        load_table(path)
    except (OSError, ValueError):  # gone, or not a table
        return False
    return True


def tables(runs_dir: Path | None = None, root: Path = EXPLAIN_DIR) -> dict[str, Path]:
    """Every explain-eval table there is, label -> file: the committed ones (``results/explain/**``), then the
    runs' (``<run>/explain_eval.json`` or one folder below it, e.g. ``<run>/explain/``)."""
    from trainer.explain.report import TABLE_JSON

    found: dict[str, Path] = {}
    if root.is_dir():
        for f in sorted(root.rglob(TABLE_JSON)):
            if _readable(f):
                found[f"results/explain/{f.parent.relative_to(root).as_posix()}".rstrip("/.")] = f
    if runs_dir is not None and Path(runs_dir).is_dir():
        for pattern in (f"*/{TABLE_JSON}", f"*/*/{TABLE_JSON}"):
            for f in sorted(Path(runs_dir).glob(pattern)):
                if _readable(f):
                    found[f"run {f.parent.relative_to(runs_dir).as_posix()}"] = f
    return found


def table_markdown(path: Path) -> str:
    """The table as the trainer lays it out (with its legend), and the command that made it when it says."""
    from trainer.explain.report import load_table, markdown

    table = load_table(path)
    command = f"\n\nMade by `{table['command']}`." if table.get("command") else ""
    return markdown(table) + command


def verdicts_for(names: set[str], folder: Path | None = None, root: Path = EXPLAIN_DIR) -> dict[str, dict]:
    """``{method: {"faithful", "sane", "neither"}}`` from the committed tables' rows of one model: the rows whose
    checkpoint ``path`` is ``folder``, or whose ``model`` (the checkpoint folder's name) is one of ``names`` (its
    registry key or name, its folder's name); {} when no table measured it."""
    from trainer.explain.report import load_table, method_verdicts

    def same(row) -> bool:
        here = folder is not None and row.get("path") and Path(row["path"]).resolve() == Path(folder).resolve()
        return bool(here) or str(row.get("model")) in names

    out: dict[str, dict] = {}
    for path in tables(None, root).values():
        for model in sorted({str(r.get("model")) for r in load_table(path)["rows"] if same(r)}):
            out.update(method_verdicts(path, model=model))
    return out


def marked(methods, verdicts: dict[str, dict]) -> list[tuple[str, str]]:
    """The method picker's (label, value) pairs: a method that passed neither test says so in its label."""
    return [(f"{m} ({FAILED_BOTH})" if verdicts.get(m, {}).get("neither") else m, m) for m in methods]

"""``trainer explain-eval``'s table: one row per (model, method), written as JSON (the full record: per-layer
sanity correlations, the thresholds), CSV and markdown; read back by the app (``load_table`` for the Dashboard,
``method_verdicts`` for the Predict tab's method picker). Torch-free, so the app reads it without the model stack.

The verdicts, per row:
- ``faithful``: the 95 % lower bound of the mean ROAD combined score over the images is above 0: removing the
  pixels the map marks lowers the explained class's probability more than removing those it leaves, beyond the
  images' spread (``trainer.explain.faithfulness``);
- ``sane``: after the cascading randomisation of every listed layer, the median Spearman correlation between the
  map and the trained model's map is below ``SANE_MAX`` (``trainer.explain.sanity``); None when not measured."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

TABLE_JSON, TABLE_CSV, TABLE_MD = "explain_eval.json", "explain_eval.csv", "explain_eval.md"
# A method passes the sanity check when the map of the fully randomised model keeps a median Spearman correlation
# under 0.5 with the trained model's (trainer.explain.sanity explains the choice).
SANE_MAX = 0.5
# The table's columns, in order: (key, header, format).
COLUMNS = (
    ("model", "model", "{}"),
    ("method", "method", "{}"),
    ("n_images", "images", "{}"),
    ("road_combined", "ROAD combined ↑", "{:+.3f}"),
    ("road_combined_low", "ROAD 95 % low", "{:+.3f}"),
    ("drop_most", "drop, 20 % most", "{:+.3f}"),
    ("drop_least", "drop, 20 % least", "{:+.3f}"),
    ("deletion_auc", "deletion AUC ↓", "{:.3f}"),
    ("insertion_auc", "insertion AUC ↑", "{:.3f}"),
    ("sanity_final", "sanity ρ (all random) ↓", "{:+.2f}"),
    ("pointing", "pointing (energy) ↑", "{:.3f}"),
    ("pointing_chance", "pointing chance", "{:.3f}"),
    ("seconds_map", "s / map", "{:.3f}"),
    ("seconds_score", "s / score", "{:.3f}"),
    ("faithful", "faithful", "{}"),
    ("sane", "sane", "{}"),
)


def verdicts(row: dict) -> dict:
    """The row's ``faithful`` and ``sane`` (None where not measured)."""
    low = row.get("road_combined_low")
    final = row.get("sanity_final")
    return {
        "faithful": None if _missing(low) else bool(low > 0.0),
        "sane": None if _missing(final) else bool(final < SANE_MAX),
    }


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def write_table(table: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``table`` ({"rows": [...], ...}) as JSON, CSV and markdown in ``out_dir``; the rows get their
    verdicts. Returns the three paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for row in table["rows"]:
        row.update(verdicts(row))
    paths = {"json": out / TABLE_JSON, "csv": out / TABLE_CSV, "md": out / TABLE_MD}
    paths["json"].write_text(json.dumps(table, indent=1, default=_plain))
    with paths["csv"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([k for k, _, _ in COLUMNS])
        for row in table["rows"]:
            w.writerow(["" if _missing(row.get(k)) else row.get(k) for k, _, _ in COLUMNS])
    paths["md"].write_text(markdown(table))
    return paths


def _plain(v):
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _cell(row: dict, key: str, fmt: str) -> str:
    v = row.get(key)
    if _missing(v):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    return fmt.format(v)


def markdown(table: dict) -> str:
    """The table as markdown, with one line on what the columns mean."""
    lines = [
        "| " + " | ".join(h for _, h, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_cell(r, k, f) for k, _, f in COLUMNS) + " |" for r in table["rows"]]
    lines += [
        "",
        "ROAD combined: mean over 10..90 % removed of (P after removing the least relevant - P after removing the "
        "most relevant) / 2, calibrated P of the explained class (0 = no better than the inverted map); "
        "faithful = its 95 % lower bound > 0. Deletion / insertion AUC: mean P while removing / keeping the most "
        f"relevant pixels. Sanity ρ: median Spearman correlation of the map with the trained model's after "
        f"randomising every listed layer from the top (Adebayo et al. 2018); sane = ρ < {SANE_MAX}. Pointing: "
        "share of the map's mass inside the tumour mask of the mosaics (chance: the mask's share, what a uniform map "
        "scores). s / map: time to make the map; s / score: time of the "
        "ROAD scoring per map.",
    ]
    return "\n".join(lines) + "\n"


def load_table(path: str | Path) -> dict:
    """The JSON table (``explain_eval.json``, or the folder holding it): {"rows": [...], "command", "data", ...}.
    A missing file raises FileNotFoundError; a file that is not such a table, ValueError."""
    path = Path(path)
    if path.is_dir():
        path = path / TABLE_JSON
    if not path.is_file():
        raise FileNotFoundError(f"no explanation table at {path}")
    try:
        table = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(table, dict) or not isinstance(table.get("rows"), list):
        raise ValueError(f"{path}: not an explain-eval table (no list of rows)")
    return table


def method_verdicts(table_json_path: str | Path, model: str | None = None) -> dict[str, dict]:
    """{method: {"faithful": bool | None, "sane": bool | None, "neither": bool}} from a table: a method measured on
    several models passes a test when it passes it for each (``model``: that model's rows only). None: not
    measured; ``neither``: measured by both tests and failed both (what the method picker marks)."""
    out: dict[str, dict] = {}
    for row in load_table(table_json_path)["rows"]:
        if model is not None and row.get("model") != model:
            continue
        v = verdicts(row)
        seen = out.setdefault(row["method"], {"faithful": None, "sane": None})
        for key in ("faithful", "sane"):
            if v[key] is not None:
                seen[key] = v[key] if seen[key] is None else (seen[key] and v[key])
    for v in out.values():
        v["neither"] = v["faithful"] is False and v["sane"] is False
    return out

"""Export of a Dashboard view: the table as CSV, and a self-contained HTML report (tables + plotly figures
with plotly.js inlined, so it opens offline)."""

from __future__ import annotations

import html
import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from trainer.reference import paper


def write_csv(summary: pd.DataFrame, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"dashboard-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    summary.to_csv(path, index=False)
    return path


def table_html(df: pd.DataFrame) -> str:
    """One table as HTML (values escaped, — where missing): in the Dashboard tab and in the report alike."""
    return df.to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4f}", border=0)


def html_report(
    title: str,
    tables: list[tuple[str, pd.DataFrame]],
    figures: list[go.Figure],
    notes: list[str] | None = None,
    sections: list[tuple[str, str]] | None = None,
) -> str:
    """``notes``: paragraphs under the title (what the tables show); ``sections``: (heading, Markdown text) after
    the figures, kept as written (a significance test's table)."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1300px} table{border-collapse:collapse;font-size:13px}"
        " td,th{border:1px solid #ccc;padding:3px 6px} h2{margin-top:1.5em}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Generated {time.strftime('%Y-%m-%d %H:%M:%S')}. Test-set metrics, mean ± sample std over patient-level folds; "
        f"the paper's figures where it publishes them.</p>",
    ]
    parts += [f"<p>{html.escape(n)}</p>" for n in notes or []]
    for heading, df in tables:
        if df is not None and not df.empty:
            parts += [f"<h2>{html.escape(heading)}</h2>", table_html(df)]
    for i, fig in enumerate(figures):
        # plotly.js once, inline: the file needs no network to open.
        parts.append(fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False))
    for heading, text in sections or []:
        parts += [f"<h2>{html.escape(heading)}</h2>", f"<pre>{html.escape(text)}</pre>"]
    parts.append(f"<p><small>Paper: {html.escape(paper()['citation'])}</small></p></body></html>")
    return "\n".join(parts)


def write_html(text: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"dashboard-{time.strftime('%Y%m%d-%H%M%S')}.html"
    path.write_text(text)
    return path

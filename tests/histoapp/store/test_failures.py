"""Failures of the annotation database that say why (issue 28), through the app's API endpoints: a database
gone away, a server that cannot be reached, ids no row can have (on SQLite and PostgreSQL): one-line reasons
(``gr.Error``), never Gradio's bare "Error"."""

from __future__ import annotations

import uuid

import gradio as gr
import pytest

from histoapp.settings import Settings
from histoapp.ui.examples import list_examples


def _endpoint(demo, name):
    """The function Gradio runs for the API endpoint ``name`` (with every wrapper the app puts around it)."""
    return next(f.fn for f in demo.fns.values() if f.api_name == name)


def test_a_database_that_went_away_says_so(pg_admin, tmp_path):
    """A PostgreSQL database dropped under the running app (a server restarted elsewhere, a wrong URL)."""
    from histoapp.ui.app import build

    name = f"t_{uuid.uuid4().hex[:16]}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = pg_admin.url.set(database=name).render_as_string(hide_password=False)
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", database_url=url)
    demo, ctx = build(settings)
    image_id = ctx.store.add_image(list_examples()[0]["path"], dataset="t")
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    with pytest.raises(gr.Error, match="annotation database (cannot be reached|does not exist)"):
        _endpoint(demo, "annotate_label")(image_id=image_id, label="benign", annotator="ana")
    ctx.store.close()
    from histoapp import health

    problems = health.problems(settings)
    assert any(p.startswith("annotation database: the annotation database") for p in problems), problems


def test_unreachable_server_is_a_start_up_problem_not_a_hang(tmp_path):
    from histoapp import health

    url = f"postgresql+psycopg://nobody@/histoapp?host={tmp_path / 'no-server-here'}"
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", database_url=url)
    (problem,) = health.problems(settings)
    assert problem.startswith("annotation database: the annotation database cannot be reached"), problem


def test_an_id_no_row_can_have_is_a_clear_refusal_through_the_api(tmp_path, db_url):
    from histoapp.ui.app import build

    demo, ctx = build(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", database_url=db_url))
    with pytest.raises(gr.Error, match="no image with id 1000000000000000000000000000000"):
        _endpoint(demo, "annotate_label")(image_id=10**30, label="benign", annotator="ana")
    with pytest.raises(gr.Error, match="no image with id"):
        _endpoint(demo, "annotate_skip")(annotator="ana", skipped=[2**40])
    ctx.store.close()

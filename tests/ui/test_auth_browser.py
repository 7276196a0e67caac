"""Logins and roles in a real browser and through ``gradio_client``: a viewer sees neither Train nor Annotate and
its direct API call to launch a run is refused; an annotator's labels carry the login name; public mode shows no
training controls."""

from __future__ import annotations

import gradio as gr
import pytest

from histoapp import auth
from histoapp.settings import Settings
from histoapp.ui.app import login_options
from histoapp.ui.tabs import train

pytestmark = pytest.mark.browser

PASSWORDS = {"vera": "viewer-pass", "ann": "annotator-pass", "rita": "researcher-pass"}
ROLES = {"vera": "viewer", "ann": "annotator", "rita": "researcher"}


def _users_settings(tmp_path) -> Settings:
    path = tmp_path / "users.json"
    for name, password in PASSWORDS.items():
        auth.add_user(path, name, password, ROLES[name])
    return Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", users_file=path)


def _serve(serve_app, settings):
    url = serve_app(settings, **login_options(settings))
    return url.rstrip("/")


def _login(page, url, name):
    page.goto(url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    page.locator("#who").filter(has_text=f"Logged in as {name}").wait_for()


def _visible_tabs(page) -> set[str]:
    page.get_by_role("tab", name="Predict").wait_for()
    return {t.inner_text().strip() for t in page.get_by_role("tab").all() if t.is_visible()}


def _api_call(url, login, fn, **client_kw):
    """Call ``fn``'s endpoint straight through ``gradio_client`` with its inputs' default values."""
    from gradio_client import Client

    from histoapp.ui import app as app_module

    demo = app_module.build_app(Settings())  # the same Blocks layout: find the endpoint serving ``fn``
    dep = next(d for d in demo.fns.values() if getattr(d.fn, "func", d.fn) is fn)
    client = Client(url, auth=login, verbose=False, **client_kw)
    values = [c.value for c in dep.inputs if not isinstance(c, gr.State)]  # a State is not an API parameter
    return client.predict(*values, api_name=f"/{dep.api_name}")


def test_viewer_sees_no_train_or_annotate_and_its_api_launch_is_refused(serve_app, page, tmp_path):
    settings = _users_settings(tmp_path)
    url = _serve(serve_app, settings)
    _login(page, url, "vera")
    page.wait_for_timeout(500)  # the page-load event sets the tabs for the role
    assert _visible_tabs(page) == {"Predict", "Dashboard", "About"}

    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="needs the researcher role; vera is viewer"):
        _api_call(url, ("vera", PASSWORDS["vera"]), train.launch)
    assert not settings.runs_dir.exists() or not any(settings.runs_dir.iterdir())
    # The same endpoint family answers a researcher (check_form validates without launching anything).
    answer = _api_call(url, ("rita", PASSWORDS["rita"]), train.check_form)
    assert isinstance(answer, str) and "Refused" not in answer


def test_annotator_labels_carry_the_login_name(serve_app, page, tmp_path):
    from histoapp.store import open_store
    from trainer.data.synthetic import generate

    settings = _users_settings(tmp_path)
    patches = generate(settings.data_dir / "p", patients_per_subtype=1, images_per_magnification=1, size=32, seed=5)
    store = open_store(settings.database_url)
    store.import_folder(patches)
    url = _serve(serve_app, settings)
    _login(page, url, "ann")
    assert _visible_tabs(page) == {"Predict", "Annotate", "Dashboard", "About"}
    page.get_by_role("tab", name="Annotate").click()
    box = page.locator("#ann-annotator input, #ann-annotator textarea").first
    page.locator("#ann-info").filter(has_text="Image #").wait_for()
    box.fill("someone else")  # a typed name never replaces the login
    page.locator("#ann-benign").click()
    page.locator("#ann-status").filter(has_text="Saved image").wait_for()
    rows = store.annotations()
    assert [r["annotator"] for r in rows] == ["ann"]
    assert {e["actor"] for e in store.audit_log()} >= {"ann"}


def test_public_mode_shows_no_training_controls(serve_app, page, tmp_path):
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", public=True)
    url = _serve(serve_app, settings)
    page.goto(url)
    page.locator("#who").filter(has_text="Public demo").wait_for()
    assert _visible_tabs(page) == {"Predict", "Dashboard", "About"}
    assert not page.locator("#train-launch").is_visible()
    assert not page.get_by_role("button", name="Import").is_visible()

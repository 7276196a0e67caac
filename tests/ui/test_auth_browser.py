"""Logins and roles in a real browser and through ``gradio_client``: a viewer sees neither Train nor Annotate and
its direct API call to launch a run is refused; an annotator's labels carry the login name; public mode shows no
training controls."""

from __future__ import annotations

from pathlib import Path

import pytest

from histoapp import auth
from histoapp.settings import Settings
from histoapp.ui.app import login_options

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


def _client(url, name):
    from gradio_client import Client

    return Client(url, auth=(name, PASSWORDS[name]), verbose=False)


def test_viewer_sees_no_train_or_annotate_and_its_api_launch_is_refused(serve_app, page, tmp_path):
    settings = _users_settings(tmp_path)
    url = _serve(serve_app, settings)
    _login(page, url, "vera")
    page.wait_for_timeout(500)  # the page-load event sets the tabs for the role
    assert _visible_tabs(page) == {"Predict", "Dashboard", "About"}

    from gradio_client.exceptions import AppError

    viewer = _client(url, "vera")
    with pytest.raises(AppError, match="launch_run needs the researcher role; vera is viewer"):
        viewer.predict(preset="quick_demo", api_name="/launch_run")
    with pytest.raises(AppError, match="needs the annotator role"):
        viewer.predict(image_id=1, label="benign", api_name="/annotate_label")
    assert not settings.runs_dir.exists() or not any(settings.runs_dir.iterdir())
    # The login itself works through the client: what a viewer may do, it can.
    assert viewer.predict(name="nope", api_name="/run_status") == {"state": "deleted"}
    # A researcher passes the role check but changes only the runs they launched.
    with pytest.raises(AppError, match="nope was launched by someone outside the app; only an admin"):
        _client(url, "rita").predict(name="nope", api_name="/stop_run")


def test_annotator_labels_carry_the_login_name(serve_app, page, tmp_path):
    from histoapp.store import open_store
    from trainer.data.synthetic import generate

    settings = _users_settings(tmp_path)
    patches = generate(settings.data_dir / "p", patients_per_subtype=1, images_per_magnification=1, size=32, seed=5)
    store = open_store(settings.database_url)
    store.import_folder(patches)
    url = _serve(serve_app, settings)
    page.set_default_timeout(120_000)  # a shared 2-core machine can take long to serve the first page
    _login(page, url, "ann")
    assert _visible_tabs(page) == {"Predict", "Slide", "Annotate", "Dashboard", "About"}
    page.get_by_role("tab", name="Annotate").click()
    box = page.locator("#ann-annotator input, #ann-annotator textarea").first
    page.locator("#ann-info").filter(has_text="Image #").wait_for()
    # The login is the name: the box shows it and cannot be typed in (a typed name would be ignored).
    assert box.input_value() == "ann" and not box.is_editable()
    assert not page.get_by_text("Import a folder or a BreakHis root").is_visible()  # researchers only
    page.locator("#ann-benign").click()
    page.locator("#ann-status").filter(has_text="Saved image").wait_for()
    rows = store.annotations()
    assert [r["annotator"] for r in rows] == ["ann"]
    assert {e["actor"] for e in store.audit_log()} >= {"ann"}
    # Your latest labels: the image's file name and a thumbnail, not only its id.
    name = Path(store.image(rows[0]["image_id"])["path"]).name
    recent = page.locator("#ann-recent")
    recent.get_by_text(name).wait_for()
    assert recent.locator("img").count() == 1 and recent.locator("img").evaluate("i => i.naturalWidth") > 0


def test_a_refused_import_is_one_message_and_breaks_nothing_else(serve_app, page, tmp_path):
    """A researcher's page shows Import; demoted to annotator while the page is open, their click is refused in
    the import message alone: the image, the queue and the other components carry no "Error"."""
    from histoapp.store import open_store
    from trainer.data.synthetic import generate

    settings = _users_settings(tmp_path)
    patches = generate(settings.data_dir / "p", patients_per_subtype=1, images_per_magnification=1, size=32, seed=5)
    open_store(settings.database_url).import_folder(patches)
    url = _serve(serve_app, settings)
    page.set_default_timeout(120_000)
    _login(page, url, "rita")
    page.get_by_role("tab", name="Annotate").click()
    page.locator("#ann-info").filter(has_text="Image #").wait_for()
    page.get_by_text("Import a folder or a BreakHis root").click()
    page.locator("#ann-import-path input, #ann-import-path textarea").first.fill(str(patches))

    auth.add_user(settings.users_file, "rita", PASSWORDS["rita"], "annotator")
    page.locator("#ann-import").click()
    page.locator("#ann-import-msg").get_by_text("Refused: import_folder needs the researcher role").wait_for()
    page.wait_for_timeout(1000)
    assert page.get_by_text("Error", exact=True).count() == 0
    assert page.locator("#ann-viewer img").first.is_visible()
    assert "Image #" in page.locator("#ann-info").inner_text()


def test_public_mode_shows_no_training_controls(serve_app, page, tmp_path):
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", public=True)
    url = _serve(serve_app, settings)
    page.goto(url)
    page.locator("#who").filter(has_text="Public demo").wait_for()
    assert _visible_tabs(page) == {"Predict", "Dashboard", "About"}
    assert not page.locator("#train-launch").is_visible()
    assert not page.get_by_role("button", name="Import").is_visible()
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=r"launch_run needs the researcher role.*public demo mode"):
        Client(url, verbose=False).predict(preset="quick_demo", api_name="/launch_run")

"""Accounts, roles and the handler guard (histoapp.auth), without a browser."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio.context import LocalContext

from histoapp import auth
from histoapp.settings import Settings


@pytest.fixture
def users_settings(tmp_path):
    path = tmp_path / "users.json"
    auth.add_user(path, "vera", "viewer-pass", "viewer")
    auth.add_user(path, "ann", "annotator-pass", "annotator")
    auth.add_user(path, "rita", "researcher-pass", "researcher")
    return Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", users_file=path)


def _as(username):
    """Process the next calls as Gradio would for a request from ``username``."""
    LocalContext.request.set(SimpleNamespace(username=username))


@pytest.fixture(autouse=True)
def _no_request():
    yield
    LocalContext.request.set(None)


def test_users_file_stores_hashes_not_passwords(users_settings):
    text = users_settings.users_file.read_text()
    assert "viewer-pass" not in text and "$argon2" in text
    users = auth.load_users(users_settings.users_file)
    assert auth.check_password(users, "ann", "annotator-pass")
    assert not auth.check_password(users, "ann", "viewer-pass")
    assert not auth.check_password(users, "nobody", "annotator-pass")


def test_bad_role_and_short_password_are_refused(tmp_path):
    with pytest.raises(ValueError, match="role"):
        auth.add_user(tmp_path / "u.json", "x", "long-enough", "superuser")
    with pytest.raises(ValueError, match="8 characters"):
        auth.add_user(tmp_path / "u.json", "x", "short", "viewer")
    (tmp_path / "bad.json").write_text(json.dumps({"x": {"role": "root", "hash": "h"}}))
    with pytest.raises(ValueError, match="unknown role"):
        auth.load_users(tmp_path / "bad.json")


def test_cli_adds_lists_and_removes(tmp_path, monkeypatch, capsys):
    path = tmp_path / "users.json"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("s3cret-pass\n"))
    assert auth.main(["--file", str(path), "add", "bob", "--role", "researcher", "--password-stdin"]) == 0
    assert auth.check_password(auth.load_users(path), "bob", "s3cret-pass")
    assert auth.main(["--file", str(path), "list"]) == 0
    assert "bob\tresearcher" in capsys.readouterr().out
    assert auth.main(["--file", str(path), "remove", "bob"]) == 0
    assert auth.main(["--file", str(path), "remove", "bob"]) == 1
    assert auth.load_users(path) == {}


def test_modes(tmp_path, users_settings, monkeypatch):
    open_ = Settings(runs_dir=tmp_path / "r", data_dir=tmp_path / "d")
    assert auth.mode(open_) == "open" and auth.role_of(open_, None) == "admin"
    public = Settings(runs_dir=tmp_path / "r", data_dir=tmp_path / "d", public=True)
    assert auth.mode(public) == "public" and auth.role_of(public, None) == "viewer"
    assert auth.mode(users_settings) == "users"
    assert auth.role_of(users_settings, None) is None
    assert auth.role_of(users_settings, SimpleNamespace(username="rita")) == "researcher"
    assert auth.role_of(users_settings, SimpleNamespace(username="mallory")) is None
    # On a Space with no users file the app is a public demo unless told otherwise.
    monkeypatch.setenv("SPACE_ID", "someone/histoapp")
    assert Settings().public
    monkeypatch.setenv("HISTOAPP_PUBLIC", "0")
    assert not Settings().public


def test_guard_refuses_below_the_role_and_passes_at_or_above(users_settings):
    calls = []

    @auth.requires("annotator")
    def label(ctx, value):
        calls.append(value)
        return value

    ctx = SimpleNamespace(settings=users_settings)
    for who in ("vera", None, "mallory"):
        _as(who)
        with pytest.raises(gr.Error, match="needs the annotator role"):
            label(ctx, 1)
    assert calls == []
    for who in ("ann", "rita"):
        _as(who)
        assert label(ctx, who) == who
    assert calls == ["ann", "rita"]


def test_every_write_handler_is_guarded():
    """The tabs' handlers that change anything carry a role (one guard, not per-handler checks)."""
    from histoapp.ui.tabs import annotate, predict, train

    needed = {
        train.launch: "researcher",
        train.stop_run: "researcher",
        annotate.save_label: "annotator",
        annotate.undo_redo: "annotator",
        annotate.adjudicate: "annotator",
        annotate.import_folder: "researcher",
        predict.send_to_annotation: "annotator",
    }
    for fn, role in needed.items():
        assert getattr(fn, "required_role", None) == role, fn.__name__


def test_hugging_face_accounts_log_in_by_oauth_with_a_role(tmp_path):
    path = tmp_path / "users.json"
    assert auth.main(["--file", str(path), "add", "hf-pathologist", "--role", "annotator", "--oauth"]) == 0
    settings = Settings(runs_dir=tmp_path / "r", data_dir=tmp_path / "d", users_file=path)
    assert not auth.password_logins(settings)
    assert not auth.check_password(auth.load_users(path), "hf-pathologist", "")  # no password can log it in
    oauth = SimpleNamespace(
        username=None, session={"oauth_info": {"userinfo": {"preferred_username": "hf-pathologist"}}}
    )
    assert auth.user_of(oauth) == "hf-pathologist"
    assert auth.role_of(settings, oauth) == "annotator"


def test_a_researcher_changes_only_the_runs_they_launched(users_settings, tmp_path):
    from histoapp.store import open_store
    from histoapp.ui.tabs import train

    auth.add_user(users_settings.users_file, "boss", "admin-pass", "admin")
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    ctx = SimpleNamespace(settings=users_settings, store=store)
    _as("rita")
    train.record_run_action(ctx, "launch", "ritas-run")
    train.check_owner(ctx, "ritas-run")
    for run in ("someone-elses", "from-the-cli"):
        with pytest.raises(gr.Error, match="only an admin may change it"):
            train.check_owner(ctx, run)
    _as("boss")
    train.check_owner(ctx, "from-the-cli")
    store.close()

"""Password logins (histoapp.login, histoapp.auth.check_password): throttled per name and per address, logged,
and as slow for an unknown name as for a known one."""

from __future__ import annotations

import logging

import pytest

from histoapp import auth, login
from histoapp.settings import Settings


@pytest.fixture
def settings(tmp_path):
    path = tmp_path / "users.json"
    auth.add_user(path, "alice", "right-password", "annotator")
    auth.add_user(path, "bob", "bobs-password", "viewer")
    return Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", users_file=path)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_thirty_wrong_passwords_then_the_right_one_is_refused_until_the_wait_is_over(settings, caplog):
    clock = Clock()
    guard = login.LoginGuard(clock=clock)
    caplog.set_level(logging.INFO, logger="histoapp.login")
    refused = 0
    for i in range(30):
        try:
            assert not login.attempt(settings, "alice", f"guess-{i}", "198.51.100.4", guard)
        except login.Throttled:
            refused += 1
    # The first five are checked; the sixth comes within the 2 s wait after the fifth failure, and so on.
    assert refused == 30 - login.FREE_FAILURES
    with pytest.raises(login.Throttled, match=r"try again in \d+ s"):
        login.attempt(settings, "alice", "right-password", "198.51.100.4", guard)
    assert "throttled" in caplog.text and "login failed for 'alice' from 198.51.100.4 (5 in a row)" in caplog.text
    # The wait doubles with each failure past the free ones.
    clock.now += 2.0
    assert not login.attempt(settings, "alice", "guess-x", "198.51.100.4", guard)
    assert guard.wait_s(["user:alice"]) == pytest.approx(4.0)
    # Once it is over, the right password works and clears the name's count.
    clock.now += 4.0
    assert login.attempt(settings, "alice", "right-password", "198.51.100.4", guard)
    assert guard.wait_s(["user:alice"]) == 0


def test_one_address_guessing_many_names_is_throttled_and_a_name_from_many_addresses_too(settings):
    clock = Clock()
    guard = login.LoginGuard(clock=clock)
    for i in range(login.FREE_FAILURES):
        login.attempt(settings, f"user{i}", "nope-nope", "203.0.113.9", guard)
    with pytest.raises(login.Throttled):  # a name it never tried: the address itself waits
        login.attempt(settings, "bob", "bobs-password", "203.0.113.9", guard)
    assert login.attempt(settings, "bob", "bobs-password", "203.0.113.10", guard)  # others are not locked out
    for i in range(login.FREE_FAILURES):
        login.attempt(settings, "alice", "nope-nope", f"192.0.2.{i}", guard)
    with pytest.raises(login.Throttled):
        login.attempt(settings, "alice", "right-password", "192.0.2.200", guard)
    # After an hour without failures they are forgotten.
    clock.now += login.FORGET_S + 1
    assert login.attempt(settings, "alice", "right-password", "192.0.2.200", guard)


def test_an_unknown_name_is_checked_against_a_hash_all_the_same(settings, monkeypatch):
    """Timing told known names from unknown ones (1.3 s vs 0.16 s): both now run one argon2 verification."""
    checked = []
    real = auth._hasher

    class Spy:
        def verify(self, hash_, password):
            checked.append(hash_)
            return real.verify(hash_, password)

        def hash(self, password):
            return real.hash(password)

    monkeypatch.setattr(auth, "_hasher", Spy())
    users = auth.load_users(settings.users_file)
    assert not auth.check_password(users, "mallory", "right-password")
    assert not auth.check_password(users, "alice", "wrong-password")
    assert auth.check_password(users, "alice", "right-password")
    assert len(checked) == 3 and all(h.startswith("$argon2") for h in checked)
    assert checked[0] not in (users["alice"]["hash"], users["bob"]["hash"])
    # An OAuth account has no password: the dummy hash never matches, whatever is typed.
    users["hf"] = {"role": "viewer"}
    assert not auth.check_password(users, "hf", "no such user: this hash is never matched")

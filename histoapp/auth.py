"""Who may do what: accounts from a users file (argon2 password hashes), four roles, and one guard that every
handler needing more than a viewer goes through, so a request sent straight to the API is refused like a click.

With no users file the app is open to a single local user (admin), as on a laptop. In public mode everyone is a
viewer. ``python -m histoapp.auth add|remove|list`` edits the users file."""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from histoapp.settings import Settings, get_settings

# Ordered: each role may do everything the ones before it may.
ROLES = ("viewer", "annotator", "researcher", "admin")
# The tabs each role sees (and whose handlers it may call).
TABS_FOR_ROLE = {
    "viewer": ("predict", "dashboard", "about"),
    "annotator": ("predict", "slide", "annotate", "dashboard", "about"),
    "researcher": ("predict", "slide", "annotate", "train", "dashboard", "about"),
    "admin": ("predict", "slide", "annotate", "train", "dashboard", "about"),
}
_hasher = PasswordHasher()


class Refused(PermissionError):
    """The request's user lacks the role a handler needs (the message says which)."""


def at_least(role: str | None, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


# --- the users file ----------------------------------------------------------------------------------------
def load_users(path: Path | None) -> dict[str, dict]:
    """``{name: {"role": ..., "hash": ...}}``; empty when the file is absent."""
    if path is None or not path.exists():
        return {}
    users = json.loads(path.read_text() or "{}")
    bad = {n: u.get("role") for n, u in users.items() if u.get("role") not in ROLES}
    if bad:
        raise ValueError(f"{path}: unknown role(s) {bad}; roles are {', '.join(ROLES)}")
    return users


def _save(path: Path, users: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(users, indent=2, sort_keys=True))
    os.chmod(tmp, 0o600)  # hashes only, but nobody else needs to read them
    tmp.replace(path)


def add_user(path: Path, name: str, password: str | None, role: str) -> None:
    """Add or update a user. ``password`` None: a Hugging Face account that logs in with OAuth (no password)."""
    name = name.strip()
    if not name or role not in ROLES:
        raise ValueError(f"need a name and a role in {', '.join(ROLES)}")
    if password is not None and len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    users = load_users(path)
    users[name] = {"role": role} | ({"hash": _hasher.hash(password)} if password is not None else {})
    _save(path, users)


def remove_user(path: Path, name: str) -> bool:
    users = load_users(path)
    if users.pop(name, None) is None:
        return False
    _save(path, users)
    return True


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("no such user: this hash is never matched")


def check_password(users: dict[str, dict], name: str, password: str) -> bool:
    """The name exists and the password matches its hash. An unknown name (or an OAuth account, which has no
    password) is checked against a dummy hash all the same, so the answer takes as long and tells no one which
    names exist. ``histoapp.login`` calls this off the event loop, throttled."""
    user = users.get(name)
    known = bool(user and user.get("hash"))
    try:
        return _hasher.verify(user["hash"] if known else _dummy_hash(), password) and known
    except (VerificationError, InvalidHashError):
        return False


# --- who is asking -------------------------------------------------------------------------------------------
def mode(settings: Settings) -> str:
    """``"users"`` (logins from the users file), ``"public"`` (everyone a viewer) or ``"open"`` (one local user)."""
    if load_users(settings.users_file):
        return "users"
    return "public" if settings.public else "open"


def password_logins(settings: Settings) -> bool:
    """Whether any account logs in with a password (Gradio's login form); the others use Hugging Face OAuth."""
    return any(u.get("hash") for u in load_users(settings.users_file).values())


def user_of(request) -> str | None:
    """The logged-in name: Gradio's password login (``request.username``), else the Hugging Face OAuth profile
    Gradio keeps in the session on a Space with ``hf_oauth: true``."""
    if request is None:
        return None
    name = getattr(request, "username", None)
    if not name:
        try:
            name = request.session["oauth_info"]["userinfo"]["preferred_username"]
        except (AttributeError, KeyError, TypeError, AssertionError):  # no session middleware: not an OAuth app
            name = None
    return name.strip() if isinstance(name, str) and name.strip() else None


def role_of(settings: Settings, request) -> str | None:
    """The role of the request's user; None for nobody (users mode without a login, or an unknown name)."""
    current = mode(settings)
    if current == "open":
        return "admin"
    if current == "public":
        return "viewer"
    user = load_users(settings.users_file).get(user_of(request) or "")
    return user["role"] if user else None


def who(settings: Settings) -> str:
    """The name the audit log records for the request being processed: the login, else ``local`` (open mode,
    one user) or ``public`` (public mode)."""
    return user_of(current_request()) or ("public" if mode(settings) == "public" else "local")


def current_request():
    """The ``gr.Request`` of the event being processed (Gradio sets it for every handler it calls)."""
    from gradio.context import LocalContext

    return LocalContext.request.get(None)


def check(settings: Settings, role: str, what: str) -> None:
    """Raise ``gr.Error`` unless the request being processed comes from a user with ``role`` (or above). Gradio
    shows it in the page and returns it to an API client, so a direct ``gradio_client`` call is refused alike."""
    request = current_request()
    have = role_of(settings, request)
    if not at_least(have, role):
        import gradio as gr

        who = user_of(request) or "this session"
        why = " (public demo mode)" if mode(settings) == "public" else ""
        raise gr.Error(f"Refused: {what} needs the {role} role; {who} is {have or 'not logged in'}{why}.")


def requires(role: str, ctx=None) -> Callable[[Callable], Callable]:
    """Decorate a handler so it runs only for ``role`` (or above). A tab's handler takes the app context as its
    first argument; an API endpoint (a closure over the context) passes it here as ``ctx`` instead."""
    if role not in ROLES:
        raise ValueError(role)

    def decorate(fn: Callable) -> Callable:
        if ctx is not None:

            @functools.wraps(fn)
            def guarded(*args, **kwargs):
                check(ctx.settings, role, fn.__name__)
                return fn(*args, **kwargs)

        else:

            @functools.wraps(fn)
            def guarded(app_ctx, *args, **kwargs):
                check(app_ctx.settings, role, fn.__name__)
                return fn(app_ctx, *args, **kwargs)

        guarded.required_role = role
        return guarded

    return decorate


# --- CLI -----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    p = argparse.ArgumentParser(prog="python -m histoapp.auth", description="Edit the app's users file.")
    p.add_argument("--file", type=Path, default=settings.users_file, help="users file (default: HISTOAPP_USERS)")
    sub = p.add_subparsers(dest="verb", required=True)
    a = sub.add_parser("add", help="add a user or change their password/role")
    a.add_argument("name")
    a.add_argument("--role", choices=ROLES, default="annotator")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    a.add_argument("--oauth", action="store_true", help="a Hugging Face account: logs in with HF OAuth, no password")
    r = sub.add_parser("remove", help="remove a user")
    r.add_argument("name")
    sub.add_parser("list", help="list users and roles")
    args = p.parse_args(argv)
    if args.file is None:
        p.error("no users file: pass --file or set HISTOAPP_USERS")
    try:
        if args.verb == "add":
            if args.oauth:
                pw = None
            elif args.password_stdin:
                pw = sys.stdin.readline().rstrip("\n")
            else:
                pw = getpass.getpass(f"{args.name}: ")
            add_user(args.file, args.name, pw, args.role)
            print(f"{args.name}: {args.role} ({args.file})")
        elif args.verb == "remove":
            if not remove_user(args.file, args.name):
                print(f"no user {args.name!r} in {args.file}", file=sys.stderr)
                return 1
            print(f"removed {args.name}")
        else:
            for name, user in sorted(load_users(args.file).items()):
                print(f"{name}\t{user['role']}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

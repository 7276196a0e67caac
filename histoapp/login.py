"""The password login behind Gradio's form: throttled per user and per address, checked off the event loop.

- **Brute force**: after ``FREE_FAILURES`` failed logins in a row for a name, or from an address, each further
  try must wait twice as long as the one before (2 s, 4 s, ... up to ``MAX_WAIT_S``) after the last failure; a
  try within that wait is refused without looking at the password (the right one included), with the wait in
  the answer. Every failure and refusal is logged (logger ``histoapp.login``); a quiet ``FORGET_S`` forgets them.
- **The event loop**: argon2 takes a CPU-bound fraction of a second on purpose. Gradio awaits an async ``auth``
  callable on its event loop, so the check runs in a small pool of its own threads (argon2's C code releases
  the GIL): other requests are served meanwhile, and guessers cannot take every worker thread of the app.
- **Which names exist**: ``auth.check_password`` checks an unknown name against a dummy hash, as long as a
  real one.

Gradio's auth callable gets no request; ``PeerMiddleware`` keeps each HTTP request's peer and
``X-Forwarded-For`` in a context variable, read here (``histoapp.public.client_address`` resolves the client)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from histoapp import auth
from histoapp.public import address_key, client_address
from histoapp.settings import Settings

FREE_FAILURES = 5
MAX_WAIT_S = 900.0
FORGET_S = 3600.0  # failures older than this (since the last one) no longer count
MAX_TRACKED = 10_000  # names / addresses remembered at most (attackers choose the names)
CHECK_THREADS = 2  # argon2 checks at once (each uses 64 MiB and a core for a fraction of a second)

log = logging.getLogger("histoapp.login")
_peer: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar(
    "histoapp_peer", default=(None, None)
)


class Throttled(Exception):
    """Too many failed logins: the message says for whom and how long to wait."""


class PeerMiddleware:
    """ASGI middleware: the HTTP request's peer address and ``X-Forwarded-For``, for the login check."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            forwarded = dict(scope.get("headers") or ()).get(b"x-forwarded-for")
            client = scope.get("client")
            token = _peer.set((client[0] if client else None, forwarded.decode("latin-1") if forwarded else None))
            try:
                return await self.app(scope, receive, send)
            finally:
                _peer.reset(token)
        return await self.app(scope, receive, send)


class LoginGuard:
    """Failed-login counts per name and per address, and the wait they impose."""

    def __init__(self, clock=time.monotonic):
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (failures in a row, time of the last)
        self._lock = threading.Lock()
        self._clock = clock

    def _count(self, key: str, now: float) -> tuple[int, float]:
        n, last = self._failures.get(key, (0, now))
        return (0, now) if now - last > FORGET_S else (n, last)

    def wait_s(self, keys: list[str]) -> float:
        """Seconds until a login for these keys may be tried (0: now)."""
        now = self._clock()
        with self._lock:
            waits = []
            for key in keys:
                n, last = self._count(key, now)
                if n >= FREE_FAILURES:
                    waits.append(last + min(MAX_WAIT_S, 2.0 ** (n - FREE_FAILURES + 1)) - now)
            return max([0.0, *waits])

    def failed(self, keys: list[str]) -> int:
        """Count a failure for each key; the most failures in a row among them."""
        now = self._clock()
        with self._lock:
            if len(self._failures) >= MAX_TRACKED:
                for k in [k for k, (_, last) in self._failures.items() if now - last > FORGET_S]:
                    del self._failures[k]
            counts = []
            for key in keys:
                n, _ = self._count(key, now)
                self._failures[key] = (n + 1, now)
                counts.append(n + 1)
            return max(counts)

    def succeeded(self, name_key: str) -> None:
        """A right password clears the name's count; the address keeps its own (one valid account must not
        reset the count of an address guessing others')."""
        with self._lock:
            self._failures.pop(name_key, None)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()


_guard = LoginGuard()
_pool = ThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="histoapp-login")


def attempt(settings: Settings, name: str, password: str, address: str, guard: LoginGuard = _guard) -> bool:
    """One login try from ``address`` (blocking: argon2). Raises ``Throttled`` while this name or address must
    wait; otherwise checks the password against the users file (read now: edits apply at the next login)."""
    keys = [f"user:{name}", f"ip:{address_key(address)}"]
    wait = guard.wait_s(keys)
    if wait > 0:
        log.warning("login refused for %r from %s: throttled, %.0f s to wait", name, address, wait)
        raise Throttled(
            f"Too many failed logins for this account or from this address: try again in {int(wait) + 1} s."
        )
    if auth.check_password(auth.load_users(settings.users_file), name, password):
        guard.succeeded(keys[0])
        log.info("login: %r from %s", name, address)
        return True
    n = guard.failed(keys)
    log.warning("login failed for %r from %s (%d in a row)", name, address, n)
    return False


def auth_callable(settings: Settings):
    """Gradio's ``auth``: an async function, so Gradio awaits it and the argon2 check runs in this module's
    threads. A throttled try answers HTTP 400 with the wait in its ``detail`` (Gradio's form shows 400s as
    "Incorrect credentials"; ``AUTH_MESSAGE`` on the form states the rule)."""

    async def check(name: str, password: str) -> bool:
        peer, forwarded = _peer.get()
        address = client_address(settings, peer, forwarded)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_pool, attempt, settings, name, password, address)
        except Throttled as exc:
            from fastapi import HTTPException

            raise HTTPException(status_code=400, detail=str(exc)) from None

    return check


AUTH_MESSAGE = (
    f"After {FREE_FAILURES} failed logins for an account or from an address, each further try waits twice as "
    "long as the last (up to 15 minutes)."
)

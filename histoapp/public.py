"""What bounds a public demo's visitors: who a caller is (what a client cannot choose), their prediction rate,
the pixels one request may decode, and how many events may wait for the models, all visitors together.

A caller is a logged-in user (a Hugging Face account on a Space with OAuth), else the client's address: the peer
of the connection, or, when that peer is a trusted proxy (``HISTOAPP_TRUSTED_PROXIES``), the last address in
``X-Forwarded-For`` that is not one. A session hash is chosen by the client, so it is never the key."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from functools import lru_cache

from histoapp.settings import Settings

WINDOW_S = 60.0
# Callers tracked at most before idle windows are dropped (each a deque of at most the rate's timestamps).
MAX_TRACKED = 10_000


@lru_cache(maxsize=32)
def _networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _ip(text: str | None):
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def client_address(settings: Settings, peer: str | None, forwarded: str | None) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy; then ``X-Forwarded-For`` read from the right
    (each proxy appends the address it saw), the first entry that is not a trusted proxy. Entries further left
    were written by the client and prove nothing."""
    trusted = _networks(tuple(settings.trusted_proxies))

    def is_proxy(addr) -> bool:
        return addr is not None and any(addr in net for net in trusted)

    client = _ip(peer)
    if not is_proxy(client):
        return str(client) if client is not None else (peer or "?")
    for hop in reversed([h for h in (forwarded or "").split(",") if h.strip()]):
        addr = _ip(hop)
        if addr is None:  # garbage in the header: stop at the last address a proxy vouched for
            break
        client = addr
        if not is_proxy(addr):
            break
    return str(client)


def address_key(address: str) -> str:
    """An IPv6 client holds a whole /64 (any address in it is theirs to pick): one key per /64."""
    addr = _ip(address)
    if addr is None:
        return address
    if addr.version == 6:
        if addr.ipv4_mapped is not None:  # ::ffff:a.b.c.d is an IPv4 client
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def request_address(settings: Settings, request) -> str:
    """The client address of a Gradio request (``gr.Request``: its connection and headers)."""
    peer = getattr(getattr(request, "client", None), "host", None)
    headers = getattr(request, "headers", None) or {}
    return client_address(settings, peer, headers.get("x-forwarded-for"))


def caller_key(settings: Settings, request) -> str:
    """Whom a public-mode limit counts: the logged-in user, else the client's address (per /64 for IPv6)."""
    from histoapp.auth import user_of

    user = user_of(request)
    return f"user:{user}" if user else f"ip:{address_key(request_address(settings, request))}"


class RateLimit:
    """At most ``per_min`` calls per key in any 60 s; idle keys are forgotten, so their number stays bounded."""

    def __init__(self, clock=time.monotonic):
        self._calls: dict[str, deque] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def take(self, key: str, per_min: int) -> float:
        """Count a call; 0.0 when allowed, else the seconds until the oldest call leaves the window."""
        now = self._clock()
        with self._lock:
            if len(self._calls) >= MAX_TRACKED:
                for k in [k for k, w in self._calls.items() if not w or now - w[-1] > WINDOW_S]:
                    del self._calls[k]
            window = self._calls.setdefault(key, deque())
            while window and now - window[0] > WINDOW_S:
                window.popleft()
            if len(window) >= per_min:
                return WINDOW_S - (now - window[0])
            window.append(now)
            return 0.0

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


_predictions = RateLimit()


def check_rate(settings: Settings) -> None:
    """In public mode, refuse a prediction beyond ``public_predictions_per_min`` in the last minute from this
    caller (``caller_key``), with how long to wait."""
    from histoapp import auth

    if auth.mode(settings) != "public":
        return
    limit = settings.public_predictions_per_min
    wait = _predictions.take(caller_key(settings, auth.current_request()), limit)
    if wait:
        import gradio as gr

        raise gr.Error(
            f"Public demo limit: {limit} predictions a minute from one address; try again in {int(wait) + 1} s."
        )


def pixel_budget(settings: Settings) -> int | None:
    """Pixels one request may decode, all its images together; None (only each image's own cap) outside public
    mode."""
    from histoapp import auth

    return settings.public_pixels if auth.mode(settings) == "public" else None


def queue_options(settings: Settings) -> dict:
    """``demo.queue`` arguments: two events at once by default; in public mode at most ``public_queue`` events
    wait, all visitors together (Gradio refuses more with "queue is full"), the second line behind the per-caller
    rate, for callers with many addresses."""
    from histoapp import auth

    options = {"default_concurrency_limit": 2}
    if auth.mode(settings) == "public":
        options["max_size"] = settings.public_queue
    return options

"""Short-lived tokens that open a live stream, or control a run: signed, naming a user, a run (or the
class) and an expiry.

A browser's `EventSource` cannot send the sign-in cookie's session through Streamlit's script, and a
stream route has no Streamlit session to ask who is there. So the page, which knows its user, mints
a token for the stream it opens (`mint_stream_token`), and the route reads it back
(`read_stream_token`) and checks the run against the access rule (`cnnlab.classroom.access`).

A token is `<payload>.<signature>`: the payload is URL-safe base64 of JSON naming the user, the run
(None for the class-wide stream) and when it expires; the signature is an HMAC-SHA256 with the
server's own key in its home folder (`cnnlab.classroom.exercises.signing_key`, under a prefix of its
own so an exercise link's signature never passes for a stream's). An edited payload, a token of
another server, or one past its expiry is refused.

A control token (`mint_control_token`) lets the live view's Stop, Pause and Resume buttons, drawn in
the browser, ask for a run's stop, pause or resume (`POST /cnnlab/stream/runs/{id}/control`). The
page mints one only for a user the access rule lets change the run; its signature is made under a
prefix of its own, so a stream token never passes for a control token, nor the other way round.
The route still applies the rule (`RunAccess`) to the user the token names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path

from cnnlab.classroom.exercises import signing_key
from cnnlab.errors import AccessError

__all__ = [
    "StreamGrant",
    "mint_control_token",
    "mint_stream_token",
    "read_control_token",
    "read_stream_token",
]

DEFAULT_SECONDS = 600.0  # a page mints a new token on each of its runs; a stream opened stays open
CONTROL_SECONDS = 4 * 3600.0  # a live view stays open through a lesson; the route checks the rule anyway
_PURPOSE = b"cnnlab-stream-token\n"  # keeps these signatures apart from the exercise links' ones
_CONTROL_PURPOSE = b"cnnlab-control-token\n"  # and a control token's apart from a stream token's


@dataclass(frozen=True)
class StreamGrant:
    """What a valid token allows: `user_id` may open the stream of `run_id` (None: the class's) until `expires_at`."""

    user_id: str
    run_id: str | None
    expires_at: float


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(home: Path, payload: str, purpose: bytes) -> str:
    digest = hmac.new(signing_key(home), purpose + payload.encode("ascii"), hashlib.sha256).digest()
    return _encode(digest)


def _mint(home: Path, user_id: str, run_id: str | None, ttl_seconds: float, purpose: bytes) -> str:
    content = {"user": user_id, "run": run_id, "expires": time.time() + ttl_seconds}
    payload = _encode(json.dumps(content, separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_signature(home, payload, purpose)}"


def mint_stream_token(
    home: Path, user_id: str, run_id: str | None, ttl_seconds: float = DEFAULT_SECONDS
) -> str:
    """A token that lets `user_id` open the stream of `run_id` (None: the class-wide stream) for `ttl_seconds`."""
    return _mint(home, user_id, run_id, ttl_seconds, _PURPOSE)


def mint_control_token(home: Path, user_id: str, run_id: str, ttl_seconds: float = CONTROL_SECONDS) -> str:
    """A token that lets `user_id` ask run `run_id` to stop, pause or resume for `ttl_seconds` (mint it
    only for a user the access rule lets change the run)."""
    return _mint(home, user_id, run_id, ttl_seconds, _CONTROL_PURPOSE)


def read_control_token(home: Path, token: str, now: float | None = None) -> StreamGrant:
    """The grant a control token carries; AccessError if it is malformed, edited, a stream token, of
    another server, expired, or names no run."""
    grant = _read(home, token, now, _CONTROL_PURPOSE)
    if grant.run_id is None:
        raise AccessError("This control token names no run; reload the page for a new one.")
    return grant


def read_stream_token(home: Path, token: str, now: float | None = None) -> StreamGrant:
    """The grant `token` carries; AccessError if it is malformed, edited, of another server or expired."""
    return _read(home, token, now, _PURPOSE)


def _read(home: Path, token: str, now: float | None, purpose: bytes) -> StreamGrant:
    payload, _, signature = token.partition(".")
    if not payload or not signature:
        raise AccessError("This stream token is incomplete; reload the page for a new one.")
    if not hmac.compare_digest(
        _signature(home, payload, purpose).encode("ascii"), signature.encode("ascii", "replace")
    ):
        raise AccessError("This stream token was changed or made by another server; reload the page.")
    try:
        content = json.loads(_decode(payload))
        grant = StreamGrant(str(content["user"]), content["run"], float(content["expires"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise AccessError("This stream token cannot be read; reload the page for a new one.") from None
    if grant.run_id is not None and not isinstance(grant.run_id, str):
        raise AccessError("This stream token names no run; reload the page for a new one.")
    if grant.expires_at < (time.time() if now is None else now):
        raise AccessError("This stream token has expired; reload the page for a new one.")
    return grant

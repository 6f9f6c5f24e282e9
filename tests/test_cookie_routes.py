"""The routes that set and clear the sign-in cookie, through Starlette's test client (no browser):
HttpOnly, SameSite=Lax, Secure only under HTTPS, one use per ticket, sign-out ends the session."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest
from starlette.applications import Starlette

with warnings.catch_warnings():
    # Starlette asks for `httpx2` over the installed `httpx`; nothing of ours to fix.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from cnnlab.classroom import joining, sign_in_sessions
from cnnlab.classroom.settings import ClassroomSettings
from cnnlab.classroom.users import Role
from cnnlab.errors import SignInError
from cnnlab.store.run_store import Store
from cnnlab.ui.session import cookie_routes

CLASS = ClassroomSettings(
    source=Path("classroom.toml"), class_code="conv-class-7", secret="0123456789abcdef-the-class-secret"
)


def _ticket(store: Store) -> tuple[str, str]:
    """A join's session id and its one-time ticket."""
    ada = joining.join(store.people, CLASS, Role.STUDENT, "Ada", "conv-class-7", "2468", time.time())
    started = sign_in_sessions.start(store.people, ada, CLASS, time.time())
    return started.session_id, started.ticket


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_ticket_becomes_an_http_only_cookie_once(home_store: Store, scheme: str) -> None:
    session_id, ticket = _ticket(home_store)
    client = TestClient(Starlette(routes=cookie_routes.ROUTES), base_url=f"{scheme}://testserver")
    response = client.post("/cnnlab/session", data={"ticket": ticket})
    assert response.status_code == 204
    header = response.headers["set-cookie"]
    assert header.startswith(f"{sign_in_sessions.COOKIE_NAME}=")
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"httponly", "path", "max-age", "samesite"} <= attributes
    assert "samesite=lax" in header.lower()
    assert ("secure" in attributes) == (scheme == "https")
    token = header.split(";")[0].split("=", 1)[1]
    assert sign_in_sessions.session_of_token(home_store.people, token) == session_id
    # The same ticket again, or a made-up one: refused, no cookie.
    for used in (ticket, "made-up"):
        again = client.post("/cnnlab/session", data={"ticket": used})
        assert again.status_code == 403 and "set-cookie" not in again.headers


def test_sign_out_ends_the_session_and_clears_the_cookie(home_store: Store) -> None:
    _, ticket = _ticket(home_store)
    client = TestClient(Starlette(routes=cookie_routes.ROUTES), base_url="http://testserver")
    client.post("/cnnlab/session", data={"ticket": ticket})
    token = client.cookies[sign_in_sessions.COOKIE_NAME]
    response = client.post("/cnnlab/sign-out")
    assert response.status_code == 204 and "max-age=0" in response.headers["set-cookie"].lower()
    session_id = sign_in_sessions.session_of_token(home_store.people, token)
    with pytest.raises(SignInError, match="you signed out"):
        sign_in_sessions.active_user(home_store.people, session_id, CLASS, time.time())

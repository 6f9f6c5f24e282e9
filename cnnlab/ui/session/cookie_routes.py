"""The HTTP routes that set and clear the sign-in cookie (the `st.App` of app.py serves them).

A Streamlit page cannot set an HttpOnly cookie: only a real HTTP response can. So a join hands its
one-time ticket (`cnnlab.classroom.sign_in_sessions`) to `POST /cnnlab/session`, whose response sets
the session's token as a cookie that is HttpOnly (page JavaScript cannot read it), SameSite=Lax
(not sent with another site's forms), Secure when the server is reached over HTTPS, and lives as
long as the session. `POST /cnnlab/sign-out` ends the session the cookie names and clears it.
"""

from __future__ import annotations

import functools
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cnnlab.classroom import sign_in_sessions
from cnnlab.errors import SignInError
from cnnlab.store.people import PeopleTable
from cnnlab.store.run_store import Store, default_home
from cnnlab.ui.session import identity


@functools.lru_cache(maxsize=4)
def _people_at(home: str) -> PeopleTable:
    return Store(home).people


def _people() -> PeopleTable:
    return _people_at(str(default_home()))


def _is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


async def start_session(request: Request) -> Response:
    """Redeem a join's ticket (form field `ticket`) for the HttpOnly session cookie; 403 for a bad ticket."""
    form = await request.form()
    ticket = form.get("ticket")
    cookie = sign_in_sessions.redeem(_people(), ticket, time.time()) if isinstance(ticket, str) else None
    if cookie is None:
        return Response("This sign-in ticket is used, expired or unknown; join again.", status_code=403)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        sign_in_sessions.COOKIE_NAME,
        cookie.token,
        max_age=cookie.max_age,
        path="/",
        secure=_is_https(request),
        httponly=True,
        samesite="lax",
    )
    return response


async def end_session(request: Request) -> Response:
    """End the session this browser's cookie names (if it is still open) and clear the cookie."""
    token = request.cookies.get(sign_in_sessions.COOKIE_NAME)
    if token:
        try:
            session_id = sign_in_sessions.session_of_token(_people(), token)
        except SignInError:
            pass  # Not a session of this server: clearing the cookie is all there is to do.
        else:
            sign_in_sessions.sign_out(_people(), session_id, time.time())
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.delete_cookie(
        sign_in_sessions.COOKIE_NAME, path="/", secure=_is_https(request), httponly=True, samesite="lax"
    )
    return response


ROUTES = [
    Route(identity.SESSION_ROUTE, start_session, methods=["POST"]),
    Route(identity.SIGN_OUT_ROUTE, end_session, methods=["POST"]),
]
"""The routes app.py gives its `st.App`."""

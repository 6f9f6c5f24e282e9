"""Classroom servers for browser tests: an app started with sign-in configured, and ways to sign in.

- `classroom_toml(...)` writes the text of a classroom.toml (class code, teacher password, teachers);
- `running_app(env, secrets)` (from `tests.e2e.app_servers`, named here too) runs `streamlit run app.py`
  with that environment (CNNLAB_HOME, CNNLAB_CLASSROOM, ...) and, optionally, a secrets.toml (the
  `[auth]` section of `st.login`) around a block;
- `sign_in_with_code(page, url, name, role)` joins through the class-code form;
- `oidc_provider` (a module-scoped fixture) runs a real OpenID provider (`oidc-provider-mock`) in a
  thread; `oidc_secrets(provider_url)` is the secrets.toml that points `st.login` at it, and
  `sign_in_oidc(page, provider_url, email, name=..., claims=...)` signs in through its authorize page.

The app is always addressed as http://localhost:PORT: the OpenID redirect URI and the cookies are
set for that host.
"""

from __future__ import annotations

import json
import time
import urllib.request
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.app_servers import require_browser
from tests.e2e.app_servers import running_app as running_app  # The classroom modules' way to start one.
from tests.e2e.conftest import wait_for_app
from tests.ports import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

CLASS_CODE = "conv-class-7"
TEACHER_PASSWORD = "pool-and-stride"
CLASS_SECRET = "a-long-random-secret-for-the-tests-only-0123456789"
COOKIE_SECRET = "another-long-random-secret-for-streamlit-cookies-42"
SIGN_IN_BUTTON = "Sign in with your school account"
PIN = "2468"  # the PIN every test person chooses, unless a test says otherwise


def classroom_toml(
    *,
    class_code: str | None = CLASS_CODE,
    teacher_password: str | None = TEACHER_PASSWORD,
    secret: str = CLASS_SECRET,
    teachers: tuple[str, ...] = (),
    teacher_claim: Mapping[str, str] | None = None,
    limits: Mapping[str, int | str] | None = None,
) -> str:
    """The text of a classroom.toml; write it to `$CNNLAB_HOME/classroom.toml` (or name it in CNNLAB_CLASSROOM)."""
    lines = [f"teachers = {json.dumps(list(teachers))}", f"secret = {json.dumps(secret)}"]
    if class_code is not None:
        lines.append(f"class_code = {json.dumps(class_code)}")
    if teacher_password is not None:
        lines.append(f"teacher_password = {json.dumps(teacher_password)}")
    if teacher_claim:
        pairs = ", ".join(f"{key} = {json.dumps(value)}" for key, value in teacher_claim.items())
        lines.append(f"teacher_claim = {{ {pairs} }}")
    if limits:
        lines.append("[limits]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in limits.items())
    return "\n".join(lines) + "\n"


def signed_in_as(page: Page) -> str:
    """The sidebar's "Signed in as NAME · ROLE" line (waits for it)."""
    line = page.get_by_test_id("stSidebar").get_by_text("Signed in as", exact=False).first
    line.wait_for()
    return line.inner_text()


def sign_in_with_code(
    page: Page,
    url: str,
    name: str,
    role: str = "student",
    secret_word: str | None = None,
    pin: str = PIN,
    expect_success: bool = True,
) -> None:
    """Open `url` and join the class as `name` with `pin`: a "student" with the class code, a "teacher"
    with the password.

    `secret_word` overrides the code or password (to try a wrong one); unless that or `expect_success`
    says it fails, the sidebar names `name` after.
    """
    page.goto(url)
    wait_for_app(page)
    if role == "teacher":
        page.get_by_test_id("stRadio").get_by_text("Teacher", exact=True).click()
        wait_for_app(page)
        label, word = "Teacher password", TEACHER_PASSWORD
    else:
        label, word = "Class code", CLASS_CODE
    page.get_by_label("Your name", exact=True).fill(name)
    page.get_by_label(label, exact=True).fill(secret_word if secret_word is not None else word)
    page.get_by_label("Your PIN", exact=True).fill(pin)
    page.get_by_role("button", name="Join", exact=True).click()
    wait_for_app(page)
    if secret_word is None and expect_success:
        assert name in signed_in_as(page)
        # The route that sets the HttpOnly cookie answered the page's request for it.
        page.wait_for_function(
            "() => !!performance.getEntriesByName(location.origin + '/cnnlab/session').length"
        )


def sign_out(page: Page, provider_url: str | None = None) -> None:
    """Click the sidebar's "Sign out" and wait for the sign-in screen.

    After an OpenID sign-in, pass the provider's URL: Streamlit's logout goes through the provider's
    end-session page, whose button this presses.
    """
    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    if provider_url is not None:
        page.wait_for_url(f"{provider_url}/**")
        page.get_by_role("button", name="End session").click()
        page.wait_for_url(lambda address: not address.startswith(provider_url))
    page.get_by_text("Sign in to CNN Lab").wait_for()
    wait_for_app(page)
    if provider_url is None:
        # The route that clears the HttpOnly cookie answered the sign-in screen's request.
        page.wait_for_function(
            "() => !!performance.getEntriesByName(location.origin + '/cnnlab/sign-out').length"
        )


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[str]:
    """A real OpenID provider (`oidc-provider-mock`) on a free port of this machine; yields its URL."""
    require_browser()
    with warnings.catch_warnings():
        # Authlib warns that the provider's `authlib.jose` import is deprecated; nothing of ours to fix.
        warnings.simplefilter("ignore")
        from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(port=free_port()) as server:
        yield f"http://localhost:{server.server_port}"


def known_openid_user(home: Path, provider_url: str, subject: str, user_id: str, name: str) -> str:
    """Record in the store at `home` that the provider's `subject` is the user `user_id` (as if they had
    signed in before), so a test can give them runs before they sign in; returns `user_id`."""
    from cnnlab.store.people import StoredUser
    from cnnlab.store.run_store import Store

    person = StoredUser(user_id, name, None, "student", None, f"{provider_url} {subject}", time.time())
    assert Store(home).people.add_user(person)
    return user_id


def oidc_secrets(provider_url: str, cookie_secret: str = COOKIE_SECRET) -> str:
    """A secrets.toml whose `[auth]` section points `st.login` at the provider (any client id is accepted)."""
    return (
        "[auth]\n"
        'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        f"cookie_secret = {json.dumps(cookie_secret)}\n"
        'client_id = "cnnlab-tests"\n'
        'client_secret = "cnnlab-tests-secret"\n'
        f'server_metadata_url = "{provider_url}/.well-known/openid-configuration"\n'
    )


def sign_in_oidc(
    page: Page,
    provider_url: str,
    email: str,
    name: str | None = None,
    claims: Mapping[str, object] | None = None,
    url: str | None = None,
) -> None:
    """Sign in through the provider as the user `email` (its `sub`), with a display name and extra claims.

    The claims are stored at the provider first (`PUT /users/<sub>`); then the browser clicks the
    app's sign-in button (opening `url` first when given), types the subject on the provider's
    authorize page and comes back to the app.
    """
    body = {"email": email, "name": name or email.split("@")[0], **(claims or {})}
    request = urllib.request.Request(
        f"{provider_url}/users/{email}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    if url is not None:
        page.goto(url)
        wait_for_app(page)
    page.get_by_role("button", name=SIGN_IN_BUTTON).click()
    page.wait_for_url(f"{provider_url}/**")
    page.locator('input[name="sub"]').fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(lambda address: not address.startswith(provider_url))
    wait_for_app(page)

"""Sign-in in the browser: through a real OpenID provider, and with the class code.

One server for the module, configured both ways at once: `st.login` points at `oidc-provider-mock`
running on this machine, and classroom.toml sets a class code, a teacher password, a teacher's
e-mail and a teacher claim.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.classroom_servers import (
    classroom_toml,
    oidc_provider,  # noqa: F401 - a fixture this module uses
    oidc_secrets,
    running_app,
    sign_in_oidc,
    sign_in_with_code,
    sign_out,
    signed_in_as,
)
from tests.e2e.conftest import screenshot, wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TEACHER_EMAIL = "ms.turing@school.example"
COOKIE = "cnnlab_classroom"
SIGN_IN_TITLE = "Sign in to CNN Lab"


@pytest.fixture(scope="module")
def classroom_url(tmp_path_factory: pytest.TempPathFactory, oidc_provider: str) -> Iterator[str]:  # noqa: F811
    """The app with OpenID sign-in and a class code, in a private CNNLAB_HOME."""
    home = tmp_path_factory.mktemp("classroom_home")
    settings = classroom_toml(teachers=(TEACHER_EMAIL,), teacher_claim={"role": "teacher"})
    (home / "classroom.toml").write_text(settings)
    with running_app({"CNNLAB_HOME": str(home)}, oidc_secrets(oidc_provider)) as url:
        yield url


def _is_sign_in_screen(page: Page) -> bool:
    return (
        page.get_by_role("heading", name=SIGN_IN_TITLE).count() == 1
        and not page.get_by_test_id("stSidebar").get_by_text("Signed in as").count()
    )


def test_students_and_teachers_sign_in_through_the_openid_provider(
    browser: Browser,
    page: Page,
    classroom_url: str,
    oidc_provider: str,  # noqa: F811
) -> None:
    page.goto(classroom_url)
    wait_for_app(page)
    assert _is_sign_in_screen(page)
    sign_in_oidc(page, oidc_provider, "ada@school.example", name="Ada Lovelace")
    assert signed_in_as(page) == "Signed in as Ada Lovelace · student"
    page.reload()
    wait_for_app(page)
    assert signed_in_as(page) == "Signed in as Ada Lovelace · student"
    screenshot(page, "sign_in_openid_student")
    sign_out(page, oidc_provider)
    assert _is_sign_in_screen(page)

    # A teacher by the e-mail listed in classroom.toml, in the same browser after the student left.
    sign_in_oidc(page, oidc_provider, TEACHER_EMAIL, name="Alan Turing")
    assert signed_in_as(page) == "Signed in as Alan Turing · teacher"

    # Another browser at the same time: a teacher by the token's claim.
    other = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
    try:
        sign_in_oidc(
            other,
            oidc_provider,
            "head@school.example",
            "Head Teacher",
            {"role": "teacher"},
            url=classroom_url,
        )
        assert signed_in_as(other) == "Signed in as Head Teacher · teacher"
    finally:
        other.context.close()
    assert signed_in_as(page) == "Signed in as Alan Turing · teacher"


def _token_cookie(context: BrowserContext) -> dict:
    (cookie,) = [cookie for cookie in context.cookies() if cookie["name"] == COOKIE]
    return dict(cookie)


def _as_teacher(token: str) -> str:
    """The token with its payload rewritten to a teacher's and its signature kept."""
    payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(role="teacher", id="teacher:ada lovelace")
    edited = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{edited}.{signature}"


def test_a_joined_student_keeps_the_identity_on_refresh_and_nowhere_else(
    browser: Browser, page: Page, classroom_url: str
) -> None:
    sign_in_with_code(page, classroom_url, "Ada Lovelace", secret_word="not-the-code")
    assert page.get_by_test_id("stAlertContentError").inner_text() == (
        "That class code is not right. Check it with your teacher and type it again."
    )
    assert _is_sign_in_screen(page)
    sign_in_with_code(page, classroom_url, "Ada Lovelace")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs").click()
    wait_for_app(page)
    shared_link = page.url
    page.reload()
    wait_for_app(page)
    assert signed_in_as(page) == "Signed in as Ada Lovelace · student"
    cookie = _token_cookie(page.context)
    assert cookie["sameSite"] == "Strict"

    stranger = browser.new_context(viewport={"width": 1400, "height": 1200})
    try:
        # The link opened in another browser: the identity is not in the address, so nobody is signed in.
        stranger_page = stranger.new_page()
        stranger_page.goto(shared_link)
        wait_for_app(stranger_page)
        assert _is_sign_in_screen(stranger_page)
        # Ada's cookie edited to make her a teacher: refused, and cleared for the next visit.
        stranger.add_cookies([{**cookie, "value": _as_teacher(cookie["value"])}])
        stranger_page.reload()
        wait_for_app(stranger_page)
        assert _is_sign_in_screen(stranger_page)
        refusal = stranger_page.get_by_test_id("stAlertContentError").inner_text()
        assert refusal.startswith("Your saved sign-in was refused: its signature does not match")
        screenshot(stranger_page, "sign_in_forged_cookie")
        stranger_page.reload()
        wait_for_app(stranger_page)
        assert _is_sign_in_screen(stranger_page)
        assert not stranger_page.get_by_test_id("stAlertContentError").count()
    finally:
        stranger.close()

    sign_out(page)
    page.reload()
    wait_for_app(page)
    assert _is_sign_in_screen(page)
    assert not [cookie for cookie in page.context.cookies() if cookie["name"] == COOKIE]

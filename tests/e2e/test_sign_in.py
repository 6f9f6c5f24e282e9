"""Sign-in in the browser: through a real OpenID provider, and with the class code.

One server for the module, configured both ways at once: `st.login` points at `oidc-provider-mock`
running on this machine, and classroom.toml sets a class code, a teacher password, a teacher's
e-mail and a teacher claim. One browser context per person.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.app_servers import LIGHT_JOBS
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
    from playwright.sync_api import BrowserContext, Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TEACHER_EMAIL = "ms.turing@school.example"
COOKIE = "cnnlab_classroom"
STREAMLIT_SIGN_IN = "_streamlit_user"  # Streamlit's cookie of an OpenID sign-in (and its parts)
SIGN_IN_TITLE = "Sign in to CNN Lab"


@pytest.fixture(scope="module")
def classroom_url(tmp_path_factory: pytest.TempPathFactory, oidc_provider: str) -> Iterator[str]:  # noqa: F811
    """The app with OpenID sign-in and a class code, in a private CNNLAB_HOME (no run trains here:
    its workers run the light job)."""
    home = tmp_path_factory.mktemp("classroom_home")
    settings = classroom_toml(teachers=(TEACHER_EMAIL,), teacher_claim={"role": "teacher"})
    (home / "classroom.toml").write_text(settings)
    with running_app({"CNNLAB_HOME": str(home), **LIGHT_JOBS}, oidc_secrets(oidc_provider)) as url:
        yield url


def _is_sign_in_screen(page: Page) -> bool:
    return (
        page.get_by_role("heading", name=SIGN_IN_TITLE).count() == 1
        and not page.get_by_test_id("stSidebar").get_by_text("Signed in as").count()
    )


def test_students_and_teachers_sign_in_through_the_openid_provider(
    new_page: Callable[[], Page],
    page: Page,
    classroom_url: str,
    oidc_provider: str,  # noqa: F811
) -> None:
    page.goto(classroom_url)
    wait_for_app(page)
    assert _is_sign_in_screen(page)
    sign_in_oidc(
        page, oidc_provider, "ada@school.example", name="Ada Lovelace", claims={"email_verified": True}
    )
    assert signed_in_as(page) == "Signed in as Ada Lovelace · student"
    page.reload()
    wait_for_app(page)
    assert signed_in_as(page) == "Signed in as Ada Lovelace · student"
    screenshot(page, "sign_in_openid_student")
    sign_out(page, oidc_provider)
    assert _is_sign_in_screen(page)

    # A teacher by the e-mail listed in classroom.toml (verified), in the same browser after the student left.
    sign_in_oidc(page, oidc_provider, TEACHER_EMAIL, name="Alan Turing", claims={"email_verified": True})
    assert signed_in_as(page) == "Signed in as Alan Turing · teacher"

    # Another browser at the same time: a teacher by the token's claim.
    other = new_page()
    sign_in_oidc(
        other,
        oidc_provider,
        "head@school.example",
        "Head Teacher",
        {"role": "teacher"},
        url=classroom_url,
    )
    assert signed_in_as(other) == "Signed in as Head Teacher · teacher"
    assert signed_in_as(page) == "Signed in as Alan Turing · teacher"


def test_an_unverified_teacher_e_mail_gets_no_console(
    page: Page,
    classroom_url: str,
    oidc_provider: str,  # noqa: F811
) -> None:
    # Another account of the provider claims the teacher's address, unverified: a student, and not the teacher.
    sign_in_oidc(
        page,
        oidc_provider,
        "mallory-subject",
        name="Ms Turing",
        claims={"email": "MS.Turing@school.example", "email_verified": False},
        url=classroom_url,
    )
    assert signed_in_as(page) == "Signed in as Ms Turing · student"
    nav = page.get_by_test_id("stSidebarNav")
    assert nav.get_by_role("link", name="Runs").count() == 1
    assert nav.get_by_role("link", name="Teacher").count() == 0
    page.goto(f"{classroom_url}/teacher")
    wait_for_app(page)
    # The console's address opens nothing of it (the page is not this user's to navigate to).
    assert page.get_by_text("The class's runs").count() == 0
    assert page.get_by_role("button", name="End the lesson").count() == 0


def _session_cookie(context: BrowserContext) -> dict:
    (cookie,) = [cookie for cookie in context.cookies() if cookie["name"] == COOKIE]
    return dict(cookie)


def _open_with_cookie(new_page: Callable[[], Page], url: str, *cookies: dict) -> Page:
    """A new person's browser (`new_page`) that was handed `cookies` (copied from someone else's), on `url`."""
    stranger_page = new_page()
    stranger_page.context.add_cookies(list(cookies))
    stranger_page.goto(url)
    wait_for_app(stranger_page)
    return stranger_page


def _refusal(page: Page) -> str:
    return page.get_by_test_id("stAlertContentError").first.inner_text()


def test_a_joined_student_keeps_the_identity_on_refresh_and_nowhere_else(
    new_page: Callable[[], Page], page: Page, classroom_url: str
) -> None:
    sign_in_with_code(page, classroom_url, "Ada Lovelace", secret_word="not-the-code")
    assert _refusal(page) == "That class code is not right. Check it with your teacher and type it again."
    assert _is_sign_in_screen(page)
    sign_in_with_code(page, classroom_url, "Ada Lovelace")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs").click()
    wait_for_app(page)
    shared_link = page.url
    page.reload()
    wait_for_app(page)
    assert signed_in_as(page) == "Signed in as Ada Lovelace · student"
    cookie = _session_cookie(page.context)
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Lax", False)  # http here
    assert COOKIE not in page.evaluate("document.cookie")  # Page JavaScript cannot read it.

    # The link opened in another browser: the identity is not in the address, so nobody is signed in.
    stranger_page = _open_with_cookie(new_page, shared_link, {**cookie, "value": "made-up"})
    # A made-up cookie is refused, and cleared for the next visit.
    assert _is_sign_in_screen(stranger_page)
    assert _refusal(stranger_page).startswith(
        "Your saved sign-in was refused: this server has no such session"
    )
    stranger_page.wait_for_function(
        "() => !!performance.getEntriesByName(location.origin + '/cnnlab/sign-out').length"
    )
    stranger_page.reload()
    wait_for_app(stranger_page)
    assert _is_sign_in_screen(stranger_page)
    assert not stranger_page.get_by_test_id("stAlertContentError").count()

    # Ada signs out: her cookie, copied before, is refused in another browser.
    sign_out(page)
    page.reload()
    wait_for_app(page)
    assert _is_sign_in_screen(page)
    assert not [cookie for cookie in page.context.cookies() if cookie["name"] == COOKIE]
    replayed = _open_with_cookie(new_page, classroom_url, cookie)
    assert _is_sign_in_screen(replayed)
    assert _refusal(replayed) == "Your sign-in has ended (you signed out). Join again with the class code."
    screenshot(replayed, "sign_in_replayed_cookie")


def test_a_second_alan_and_a_look_alike_cannot_act_as_alan(
    new_page: Callable[[], Page], page: Page, classroom_url: str
) -> None:
    sign_in_with_code(page, classroom_url, "Alan", pin="1912")
    impostor = new_page()
    for name in ("ALAN", "Ａｌａｎ", "\u0410lan"):  # upper case, full width, a Cyrillic А
        sign_in_with_code(impostor, classroom_url, name, pin="0000", expect_success=False)
        assert _is_sign_in_screen(impostor)
        assert _refusal(impostor).startswith("The name 'Alan' is already taken in this class.")
    screenshot(impostor, "sign_in_name_taken")
    # Alan himself, on a second device, with his PIN: the same person.
    sign_in_with_code(impostor, classroom_url, "alan", pin="1912", expect_success=False)
    assert signed_in_as(impostor) == "Signed in as Alan · student"
    # Signing out right after joining (no reload between) clears the cookie set since the page connected.
    sign_out(impostor)
    assert not [cookie for cookie in impostor.context.cookies() if cookie["name"] == COOKIE]


def test_ending_the_lesson_signs_every_student_out(
    new_page: Callable[[], Page],
    page: Page,
    classroom_url: str,
    oidc_provider: str,  # noqa: F811
) -> None:
    sign_in_with_code(page, classroom_url, "Ms Hopper", role="teacher")
    grace = new_page()
    hedy = new_page()
    sign_in_with_code(grace, classroom_url, "Grace")
    sign_in_oidc(hedy, oidc_provider, "hedy@school.example", name="Hedy", url=classroom_url)
    grace_cookie = _session_cookie(grace.context)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Teacher").click()
    wait_for_app(page)
    page.get_by_role("button", name="End the lesson").click()
    wait_for_app(page)
    notice = page.get_by_test_id("stAlert").filter(has_text="The lesson has ended")
    # Grace's, and those of earlier tests' students still signed in on this server.
    assert re.match(r"The lesson has ended: [1-9]\d* student sign-in\(s\) closed\.", notice.inner_text())
    screenshot(page, "teacher_end_the_lesson")
    # Grace's open page: her next click finds her signed out; her cookie elsewhere is refused too.
    grace.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs").click()
    wait_for_app(grace)
    assert _is_sign_in_screen(grace)
    ended = "Your sign-in has ended (your teacher ended the lesson). Join again with the class code."
    assert _refusal(grace) == ended
    replayed = _open_with_cookie(new_page, classroom_url, grace_cookie)
    assert _is_sign_in_screen(replayed) and _refusal(replayed) == ended
    # A student signed in with a school account signs in again too.
    hedy.reload()
    wait_for_app(hedy)
    assert _is_sign_in_screen(hedy)
    assert _refusal(hedy).startswith("Your sign-in has ended (your teacher ended the lesson).")
    # The teacher is still signed in.
    page.reload()
    wait_for_app(page)
    assert signed_in_as(page) == "Signed in as Ms Hopper · teacher"


def test_a_school_sign_in_copied_before_sign_out_is_refused_after(
    new_page: Callable[[], Page],
    page: Page,
    classroom_url: str,
    oidc_provider: str,  # noqa: F811
) -> None:
    """Streamlit's own sign-in cookie, copied before sign-out and replayed in another browser after it,
    names a session the server ended: the sign-in screen, not Lin's account."""
    sign_in_oidc(page, oidc_provider, "lin@school.example", name="Lin", url=classroom_url)
    assert signed_in_as(page) == "Signed in as Lin · student"
    copied = [cookie for cookie in page.context.cookies() if cookie["name"].startswith(STREAMLIT_SIGN_IN)]
    assert copied, [cookie["name"] for cookie in page.context.cookies()]
    sign_out(page, oidc_provider)
    replayed = _open_with_cookie(new_page, classroom_url, *copied)
    assert _is_sign_in_screen(replayed)
    assert (
        _refusal(replayed)
        == "Your sign-in has ended (you signed out). Sign in again with your school account."
    )
    screenshot(replayed, "sign_in_openid_replayed_cookie")

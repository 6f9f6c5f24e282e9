"""Browser tests: a real `streamlit run app.py` server and Debian's Chromium driven by Playwright.

Without Chromium the tests skip, except when CNNLAB_REQUIRE_BROWSER is set (CI), where they fail.
Each test module gets its own server with its own CNNLAB_HOME, except the modules that only look at a
trained run, which share one per test process (`trained_app`); screenshots go to
tests/e2e/artifacts/ (with CNNLAB_SCREENSHOTS=1, and for every failed test). A module marked
`light_jobs` gets a server whose workers run the light job of tests/fake_jobs.py (`LIGHT_JOBS`)
instead of training: its warm worker then starts no TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.app_servers import CHROMIUM, LIGHT_JOBS, require_browser, running_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Screenshots are for people reviewing a change (`CNNLAB_SCREENSHOTS=1 python -m pytest tests/e2e`):
# taking them costs the suite time, so by default only a failing test saves one.
SCREENSHOTS = os.environ.get("CNNLAB_SCREENSHOTS", "") not in ("", "0")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # The tabs of one browser context on one site share a renderer process (see the `page` fixture).
    "--process-per-site",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "light_jobs: the module's app server runs the light job of tests/fake_jobs.py, not training",
    )


# The cells of every row of the page's first data frame, from the grid's accessible table (the cells
# themselves are drawn on a canvas).
ROWS_SCRIPT = """() => {
    const frame = document.querySelector('[data-testid="stDataFrame"]');
    if (!frame) return [];
    return [...frame.querySelectorAll('tr')].map(row => [...row.querySelectorAll('td, th')].map(
        cell => cell.textContent.trim()));
}"""

# The traces of each plotly chart on the page as the browser drew them, [type, number of points] each
# (Plotly 6 ships arrays as base64, so not `data`); a chart still being drawn has none yet. Evaluate on
# `page.locator(".js-plotly-plot")`.
TRACES_DRAWN = (
    "elements => elements.map(element => (element._fullData || []).map(trace => [trace.type, trace._length]))"
)


@pytest.fixture(scope="module")
def app_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The private CNNLAB_HOME of this module's app server (tests may record runs in it)."""
    return tmp_path_factory.mktemp("cnnlab_home")


@pytest.fixture(scope="module")
def app_url(app_home: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Start `streamlit run app.py` with a private CNNLAB_HOME (`app_servers.running_app`);
    yield its URL. In a module marked `light_jobs`, its workers run `LIGHT_JOBS`."""
    light = LIGHT_JOBS if request.node.get_closest_marker("light_jobs") else {}
    with running_app({"CNNLAB_HOME": str(app_home), **light}) as url:
        yield url


@pytest.fixture(scope="session")
def trained_app(
    tmp_path_factory: pytest.TempPathFactory, browser_trained_home: tuple[Path, str]
) -> Iterator[tuple[str, str]]:
    """The URL of a server whose home holds a finished digits run (the session's, trained for three
    epochs, copied in before the server starts), and that run's id: (URL, run id).

    One server for every module of this process that uses it (their workers run `LIGHT_JOBS`; they
    only look at the trained run, and the light runs they start save no model, so none of them
    becomes another's run to pick): each would otherwise start its own, and import TensorFlow in it
    to load the model. It runs beside the modules' servers, on a port of its own (`app_port(1)`).
    """
    from tests.trained_runs import copy_home

    home = tmp_path_factory.mktemp("trained_app_home")
    template, run_id = browser_trained_home
    copy_home(template, home)
    with running_app({"CNNLAB_HOME": str(home), **LIGHT_JOBS}, slot=1) as url:
        yield url, run_id


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for every browser test (launching it costs seconds), closed after the
    last of them, before the tests outside tests/e2e run."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def browser(chromium: Browser, shared_tabs: SharedTabs) -> Iterator[Browser]:
    """The shared Chromium for a module's tests; the contexts (and pages) a module opened itself are
    closed after it, so none keeps polling a server that has stopped."""
    yield chromium
    for context in list(chromium.contexts):
        if context not in shared_tabs.contexts():
            context.close()


class KeptTabs:
    """A browser context whose tabs share one renderer process (`--process-per-site`). That process
    keeps the Streamlit scripts it has compiled, but it ends with its last tab: so a test's page, once
    the test is done, stays open on the server's health address (a line of text) until the next test's
    page has loaded. The context lives as long as the browser: a module's first page, at the address
    of the earlier modules' servers (`app_servers.app_port`), costs Chromium about 1-1.5 CPU-seconds
    less than in a context of its own, and later pages about a third less."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self._kept: Page | None = None

    def new_page(self) -> Page:
        """A new page in the context, emptied of cookies first."""
        self.context.clear_cookies()
        page = self.context.new_page()
        page.set_default_timeout(30_000)
        return page

    def done(self, page: Page) -> None:
        """End a test's page: clear its storage and cookies, keep it on the health address (closing the
        one kept before), or close it if it is not on one of our servers."""
        from playwright.sync_api import Error as PlaywrightError

        if self._kept is not None:
            self._kept.close()
            self._kept = None
        address = urllib.parse.urlsplit(page.url)
        try:
            if address.scheme == "http" and address.hostname == "localhost":
                page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
                page.goto(f"http://{address.netloc}/_stcore/health")
                self._kept = page
            else:
                page.close()
        except PlaywrightError:  # A page that crashed, or whose server has stopped: nothing to keep.
            page.close()
        self.context.clear_cookies()


class SharedTabs:
    """The browser contexts every module's tests open their pages in: one for `page`, and one per
    person a test opens with `new_page` (a test's first person uses the first, and so on)."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self.page_tabs = KeptTabs(browser.new_context(viewport={"width": 1400, "height": 2000}))
        self.people: list[KeptTabs] = []

    def person(self, index: int) -> KeptTabs:
        """The context of a test's `index`th person (0 for the first), made when first asked for."""
        while len(self.people) <= index:
            self.people.append(KeptTabs(self._browser.new_context(viewport={"width": 1400, "height": 1600})))
        return self.people[index]

    def contexts(self) -> list[BrowserContext]:
        """Every context made so far."""
        return [self.page_tabs.context, *(person.context for person in self.people)]


@pytest.fixture(scope="package")
def shared_tabs(chromium: Browser) -> Iterator[SharedTabs]:
    """The `SharedTabs` of every browser test in this process, closed with the browser."""
    tabs = SharedTabs(chromium)
    yield tabs
    for context in tabs.contexts():
        context.close()


@pytest.fixture
def page(browser: Browser, shared_tabs: SharedTabs) -> Iterator[Page]:
    """A new 1400x2000 page (tall, so screenshots show whole pages) with no cookies and no storage:
    its context is emptied before and after each test, so no test signs in as another's person or
    finds what another stored."""
    page = shared_tabs.page_tabs.new_page()
    yield page
    shared_tabs.page_tabs.done(page)


@pytest.fixture
def new_page(browser: Browser, shared_tabs: SharedTabs) -> Iterator[Callable[[], Page]]:
    """A maker of pages in browser contexts of their own (own cookies: each its own signed-in person),
    1400x1600; each context emptied of cookies and storage between tests, as `page`'s is."""
    made: list[Page] = []

    def make() -> Page:
        made.append(shared_tabs.person(len(made)).new_page())
        return made[-1]

    yield make
    for index, page in enumerate(made):
        shared_tabs.person(index).done(page)


# Watches the page for the user's actions and the script's runs: a click's rerun reaches the page a
# moment after the click, so "not running" right after a click may still be the previous run's state.
WATCH_SCRIPT = """() => {
    if (window.cnnlabWatch) return;
    const watch = window.cnnlabWatch = {actionAt: 0, runAt: 0};
    for (const type of ["click", "keydown", "change"]) {
        document.addEventListener(type, () => { watch.actionAt = performance.now(); }, true);
    }
    new MutationObserver(records => {
        if (records.some(record => record.target.getAttribute(record.attributeName) === "running")) {
            watch.runAt = performance.now();
        }
    }).observe(document.body, {attributes: true, subtree: true, attributeFilter: ["data-test-script-state"]});
}"""
# How long an action may take to start its rerun before we take it that it started none (a tab, a
# field being focused): the cost of waiting after an action that reruns nothing.
RERUN_GRACE_MS = 1500
SETTLED_SCRIPT = f"""() => {{
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
    const watch = window.cnnlabWatch;
    if (!watch || watch.runAt >= watch.actionAt) return true;
    return performance.now() - watch.actionAt > {RERUN_GRACE_MS};
}}"""


def wait_for_app(page: Page, timeout: float = 60_000) -> None:
    """Wait until the Streamlit script has finished running, including the rerun the last click or
    key press started (which may not have reached the page yet when this is called)."""
    from playwright.sync_api import Error as PlaywrightError

    page.wait_for_function(SETTLED_SCRIPT, timeout=timeout, polling=100)
    with contextlib.suppress(PlaywrightError):  # A navigation started since: its page has no watch yet.
        page.evaluate(WATCH_SCRIPT)


def screenshot(page: Page, name: str, full_page: bool = True) -> Path | None:
    """Save a screenshot of the whole page (or, with `full_page` False, of what the window shows) to
    tests/e2e/artifacts/NAME.png and return its path, when `$CNNLAB_SCREENSHOTS` asks for them (None
    otherwise)."""
    if not SCREENSHOTS:
        return None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A browser test that fails leaves a screenshot of its page: artifacts/failed_TEST.png."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and page is not None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):  # A page that has crashed or closed has nothing to show.
            page.screenshot(path=str(ARTIFACTS / f"failed_{item.name}.png"), full_page=True)


def go_to(page: Page, link: str) -> None:
    """Open another page through the sidebar and wait for it to finish running."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    wait_for_app(page)


def set_number(page: Page, label: str, value: float) -> None:
    """Type `value` into the number field labelled `label` and wait for the rerun. A number field only:
    a text field of the same label (the sweep's "Epochs", hidden in its expander) may be drawn first."""
    field = page.get_by_role("spinbutton", name=label, exact=True).first
    field.fill(str(value))
    field.press("Enter")
    wait_for_app(page)

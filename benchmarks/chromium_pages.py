"""Real Chromium pages for the load benchmarks' end-to-end figures (Playwright, /usr/bin/chromium).

`launch_browser` starts a Chromium whose pages are as cheap as a real page can be on a shared
machine (the design's flags, foreground timers, few renderer processes, images and fonts refused).
`PagePair` is two tabs of two students on the same run, for what only a browser can show:

- `stop_trial()`: the first tab clicks Stop; seconds from the click (a capturing listener, before
  Streamlit sees it) to "Stopped after epoch" on each tab (a MutationObserver notes when it appears);
- `pause_resume_trial()`: the first tab clicks Pause, then Resume; seconds from each click to
  "Paused after epoch", then to "Training: epoch", on each tab;
- `click_trial()`: the first tab, on an idle warm server's Home page, clicks "Train a digits
  classifier"; seconds from the click to the first point of the loss curve on screen.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e import conftest as browser_tests

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize

# The browser tests' Chromium and flags (the design's), plus: every page acts as a tab in the
# foreground on a student's computer, and many same-site pages share few renderer processes.
CHROMIUM_FLAGS = [
    *browser_tests.CHROMIUM_FLAGS,
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--renderer-process-limit=4",
    "--disable-extensions",
    "--mute-audio",
]
VIEWPORT: ViewportSize = {"width": 900, "height": 700}
REFUSED = re.compile(r"\.(png|jpe?g|gif|svg|ico|webp|woff2?|ttf|otf)(\?.*)?$")  # images and fonts
INTERACTIVE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
STOPPED_TEXT = "Stopped after epoch"
PAUSED_TEXT = "Paused after epoch"
TRAINING_TEXT = "Training: epoch"  # the status row of a run that trains (`run_status.SENTENCES`)


def watch_for(text: str) -> str:
    """A script noting, in the page, when the user next clicks (capturing, before Streamlit sees it) and
    when `text` first shows (it must not show when the script is run)."""
    return f"""() => {{
    window.__clickedAt = null; window.__seenAt = null;
    document.addEventListener('click', () => {{ window.__clickedAt = window.__clickedAt || Date.now(); }}, true);
    const seen = () => document.body.innerText.includes({text!r});
    new MutationObserver(() => {{ if (!window.__seenAt && seen()) window.__seenAt = Date.now(); }})
        .observe(document.body, {{childList: true, subtree: true, characterData: true}});
}}"""


# A point on the loss curve: plotly 6 keeps a trace's point count in `_length` (its data is base64).
FIRST_CURVE_POINT = """() => [...document.querySelectorAll('.js-plotly-plot')].some(chart =>
    (chart._fullLayout?.title?.text || '').replace(/<[^>]*>/g, '') === 'Loss'
    && (chart._fullData || []).some(trace => (trace._length || 0) > 0))"""
WAIT_MS = 120_000


def launch_browser(playwright: Playwright) -> tuple[Browser, BrowserContext]:
    """A Chromium and one context for its pages (one HTTP cache: the app's scripts load once)."""
    browser = playwright.chromium.launch(executable_path=browser_tests.CHROMIUM, args=CHROMIUM_FLAGS)
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    context.route(REFUSED, lambda route: route.abort())
    return browser, context


class PagePair:
    """Two students' tabs in one Chromium (see the module's docstring)."""

    def __init__(self, playwright: Playwright, base_url: str) -> None:
        self.base_url = base_url
        self.browser, context = launch_browser(playwright)
        self.pages: list[Page] = [context.new_page(), context.new_page()]
        for page in self.pages:
            page.set_default_timeout(WAIT_MS)

    def park(self) -> None:
        """Leave the app in both tabs (a blank page), so they cost nothing while a window measures."""
        for page in self.pages:
            page.goto("about:blank")

    def follow(self, run_id: str) -> None:
        """Open `/train?run=<run_id>` in both tabs; return once each shows the run's Stop button."""
        for page in self.pages:
            page.goto(f"{self.base_url}/train?run={run_id}", wait_until="commit")
        for page in self.pages:
            page.get_by_role("button", name="Stop", exact=True).wait_for()

    def stop_trial(self) -> tuple[float, list[float]]:
        """The first tab clicks Stop: the click's time (epoch seconds) and the seconds to "Stopped" per tab."""
        return self._control_trial("Stop", STOPPED_TEXT)

    def pause_resume_trial(self) -> tuple[list[float], list[float]]:
        """The first tab clicks Pause, then (once both tabs say so) Resume: the seconds from each click to
        "Paused after epoch" and then to "Training: epoch", per tab."""
        _, paused = self._control_trial("Pause", PAUSED_TEXT)
        _, resumed = self._control_trial("Resume", TRAINING_TEXT)
        return paused, resumed

    def _control_trial(self, button: str, answer: str) -> tuple[float, list[float]]:
        """The first tab clicks `button`: the click's time (epoch seconds) and the seconds to `answer` per tab."""
        for page in self.pages:
            page.evaluate(watch_for(answer))
        clicker = self.pages[0]
        target = clicker.get_by_role("button", name=button, exact=True)
        try:  # As a student clicks: at once, whatever the page is doing, once the button takes clicks.
            clicker.wait_for_function(
                "([name]) => [...document.querySelectorAll('button')].some(b => b.innerText.trim() === name && !b.disabled)",
                arg=[button],
                polling=50,
            )
            target.click(force=True)
        except PlaywrightTimeout:
            return time.time(), [float("inf")] * len(self.pages)
        clicked_at = (clicker.evaluate("() => window.__clickedAt") or time.time() * 1000) / 1000
        deadline = time.monotonic() + WAIT_MS / 1000
        seen: list[float | None] = [None] * len(self.pages)
        while time.monotonic() < deadline and not all(seen):
            seen = [page.evaluate("() => window.__seenAt") for page in self.pages]
            clicker.wait_for_timeout(100)
        return clicked_at, [moment / 1000 - clicked_at if moment else float("inf") for moment in seen]

    def click_trial(self) -> float:
        """On Home, the first tab clicks "Train a digits classifier": seconds to the loss curve's first point."""
        page = self.pages[0]
        page.goto(self.base_url)
        page.wait_for_selector(INTERACTIVE)
        button = page.get_by_role("button", name="Train a digits classifier")
        started = time.perf_counter()
        button.click()
        try:
            page.wait_for_function(FIRST_CURVE_POINT, timeout=WAIT_MS, polling=50)
        except PlaywrightTimeout:
            return float("inf")
        return time.perf_counter() - started

    def screenshots(self, folder: Path | None, name: str) -> None:
        """Save what each tab shows as FOLDER/NAME_<tab>.png (nothing without a folder)."""
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        for index, page in enumerate(self.pages):
            page.screenshot(path=str(folder / f"{name}_{index}.png"), full_page=True)

    def exceptions(self) -> list[str]:
        """The text of any exception either tab shows."""
        return [
            problem.inner_text()[:600]
            for page in self.pages
            for problem in page.get_by_test_id("stException").all()
        ]

    def close(self) -> None:
        """Close the browser."""
        self.browser.close()

"""The class benchmark's older mode (`classroom_load.py --mode chromium`): one Chromium page per viewer.

For each N it opens N Chromium pages on `/train?run=R` on this machine, R being the run that trains,
and measures a window; then `--stops` times one page clicks Stop and every page waits for "Stopped
after epoch". Thirty pages stall on 2 cores (docs/performance.md), which is why the default mode
speaks Streamlit's protocol instead; this one remains for a machine with cores to spare, or for a
few pages.

The pages are as cheap as a real page can be: all the pages of one Chromium process share one
context and a few renderer processes, images and fonts are refused, and pages open a few at a time
(`--open-batch`). A page notes each script-finished message its own websocket receives
(`COUNT_RERUNS`), so no frame travels to this process: the fragment tick is the time between two of
them (p95 over every page).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from benchmarks.chromium_pages import STOPPED_TEXT, launch_browser, watch_for
from benchmarks.class_server import ClassServer, measure_window
from benchmarks.process_figures import percentile

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

# Notes in the page the time of each script-finished message (ForwardMsg field 6, a varint) its
# websocket receives, by walking the top-level fields of the small binary messages, and counts the
# runs of the whole page among them (status 0; a fragment's rerun ends with status 3).
COUNT_RERUNS = """(() => {
    window.__finished = []; window.__full = 0;
    const finished = (bytes) => {
        let at = 0;
        const varint = () => {
            let value = 0, shift = 0, byte;
            do { byte = bytes[at++]; value += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
            return value;
        };
        while (at < bytes.length) {
            const tag = varint(), field = Math.floor(tag / 8), wire = tag & 7;
            if (field === 6 && wire === 0) return varint();
            if (wire === 0) varint(); else if (wire === 2) { const length = varint(); at += length; }
            else if (wire === 1) at += 8; else if (wire === 5) at += 4; else return -1;
        }
        return -1;
    };
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
        constructor(...options) {
            super(...options);
            this.addEventListener('message', (event) => {
                const data = event.data;
                const status = data instanceof ArrayBuffer && data.byteLength < 400
                    ? finished(new Uint8Array(data)) : -1;
                if (status >= 0) window.__finished.push(performance.now() / 1000);
                if (status === 0) window.__full += 1;
            });
        }
    };
})()"""


@dataclass
class Viewer:
    """One browser page following a run, and the script runs it saw end (seconds, the page's clock)."""

    page: Page
    finished: list[float] = field(default_factory=list)
    full_runs: int = 0  # of the page's script, not of a fragment

    def clear(self) -> None:
        self.page.evaluate("() => { window.__finished = []; window.__full = 0; }")

    def collect(self) -> None:
        self.finished = list(self.page.evaluate("() => window.__finished || []"))
        self.full_runs = int(self.page.evaluate("() => window.__full || 0"))


class ChromiumClass:
    """N Chromium pages on the class server's training run (see the module's docstring)."""

    def __init__(self, playwright: Playwright, server: ClassServer, pages_per_browser: int, open_batch: int):
        self.playwright, self.server = playwright, server
        self.pages_per_browser, self.open_batch = pages_per_browser, open_batch
        self.browsers: list[Browser] = []
        self.viewers: list[Viewer] = []
        self.following = ""

    def open_viewers(self, count: int, run_id: str) -> None:
        """Open `count` pages on the run, `pages_per_browser` per browser process, all in one context."""
        for index in range(count):
            if index % self.pages_per_browser == 0:
                browser, context = launch_browser(self.playwright)
                self.browsers.append(browser)
                context.add_init_script(script=COUNT_RERUNS)
            self.viewers.append(Viewer(context.new_page()))
        self.follow(run_id)

    def follow(self, run_id: str) -> None:
        """Point every page at `run_id` (unless they show it already) and wait until each draws the run."""
        if run_id == self.following:
            return
        self.following = run_id
        for start in range(0, len(self.viewers), self.open_batch):
            batch = self.viewers[start : start + self.open_batch]
            for viewer in batch:
                viewer.page.goto(f"{self.server.url}/train?run={run_id}", wait_until="commit")
            for viewer in batch:
                try:
                    viewer.page.get_by_role("button", name="Stop", exact=True).wait_for(timeout=180_000)
                except PlaywrightTimeout:  # Say what the page shows instead, and measure without it.
                    text = viewer.page.inner_text("body")[:300].replace("\n", " | ")
                    print(f"a page did not show the run within 180 s; it shows: {text}", flush=True)
                    self.viewers.remove(viewer)

    def close_viewers(self) -> None:
        for browser in self.browsers:
            browser.close()
        self.browsers, self.viewers, self.following = [], [], ""

    def pump(self, seconds: float) -> None:
        """Let time pass while Playwright delivers the pages' websocket events."""
        if self.viewers:
            self.viewers[0].page.wait_for_timeout(seconds * 1000)
        else:
            time.sleep(seconds)

    def window(self, seconds: float) -> dict[str, float]:
        """Measure the server, the training and the pages for `seconds`."""
        for viewer in self.viewers:
            viewer.clear()
        figures = measure_window(self.server, seconds, self.pump)
        for viewer in self.viewers:
            viewer.collect()
        ticks = [
            later - earlier
            for viewer in self.viewers
            for earlier, later in zip(viewer.finished, viewer.finished[1:], strict=False)
        ]
        figures["tick_p95"] = percentile(ticks, 0.95)
        figures["tick_median"] = statistics.median(ticks) if ticks else math.nan
        figures["full_reruns"] = float(sum(viewer.full_runs for viewer in self.viewers))
        return figures

    def stop_trials(self, count: int) -> tuple[list[float], list[float]]:
        """`count` Stop clicks on the followed run: seconds to "Stopped" on the clicking page, on every page."""
        clicker_seconds: list[float] = []
        every_page: list[float] = []
        for trial in range(count):
            self.follow(self.server.training_run())
            for viewer in self.viewers:
                viewer.page.evaluate(watch_for(STOPPED_TEXT))
            clicker = self.viewers[trial % len(self.viewers)].page
            try:
                clicker.get_by_role("button", name="Stop", exact=True).click(force=True, timeout=120_000)
            except PlaywrightTimeout:
                print(f"Stop click {trial + 1}: the page did not take the click within 120 s", flush=True)
                clicker_seconds.append(math.inf)
                every_page.append(math.inf)
                continue
            clicked_at = clicker.evaluate("() => window.__clickedAt")
            stopped: list[Any] = []
            for _ in range(600):  # at most about 2 minutes
                stopped = [viewer.page.evaluate("() => window.__seenAt") for viewer in self.viewers]
                if all(stopped):
                    break
                self.pump(0.2)
            seen = [(value - clicked_at) / 1000 if value else math.inf for value in stopped]
            clicker_seconds.append(seen[trial % len(self.viewers)])
            every_page.extend(seen)
        return clicker_seconds, every_page


def run(arguments: argparse.Namespace, counts: list[int]) -> None:
    """The whole Chromium-per-viewer benchmark: a window with no viewer, then each N; prints a table."""
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnlab_class_") as home, sync_playwright() as playwright:
        server = ClassServer(Path(home))
        crowd = ChromiumClass(playwright, server, arguments.pages_per_browser, arguments.open_batch)
        try:
            server.queue_runs(2 + len(counts) * (arguments.stops + 1))
            baseline = crowd.window(arguments.window)
            print(
                f"no viewer: server {baseline['server_cores']:.3f} cores, epoch {baseline['epoch']:.2f} s",
                flush=True,
            )
            for count in counts:
                crowd.open_viewers(count, server.training_run())
                figures = crowd.window(arguments.window)
                clicker, every_page = crowd.stop_trials(arguments.stops)
                crowd.close_viewers()
                figures["stop_p95"], figures["stop_all_p95"] = (
                    percentile(clicker, 0.95),
                    percentile(every_page, 0.95),
                )
                rows.append((count, figures))
                print(
                    f"N={count}: " + ", ".join(f"{name} {value:.3f}" for name, value in figures.items()),
                    flush=True,
                )
        finally:
            crowd.close_viewers()
            server.shutdown()
    print(
        "\n| N | server CPU (cores) | epoch with N / none | Stop p95 clicker (all pages) | fragment tick p95 (median) | server RSS growth |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for count, figures in rows:
        print(
            f"| {count} | {figures['server_cores']:.3f} | {figures['epoch'] / baseline['epoch']:.2f} "
            f"({figures['epoch']:.2f} s / {baseline['epoch']:.2f} s) | {figures['stop_p95']:.2f} s "
            f"({figures['stop_all_p95']:.2f} s) | {figures['tick_p95']:.2f} s ({figures['tick_median']:.2f} s) "
            f"| {figures['rss_growth']:+.1f} MB |"
        )

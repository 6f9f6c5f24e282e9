"""A class on one server: N browser sessions follow a live run while runs from several owners train and queue.

One `streamlit run app.py` on a free port with its own CNNLAB_HOME and one training slot
(`CNNLAB_MAX_WORKERS=1`); this process queues digits runs for several owners in the same store
and the server's scheduler runs them (fair turns, one trains, the others wait). For each N it opens N
Chromium pages on `/train?run=R`, R being the run that trains, and measures over a window of
`--seconds`.

The browsers run on this same machine, so each page is made as cheap as a real page can be: all
the pages of one Chromium process share one context (one HTTP cache: the app's scripts load once)
and a few renderer processes (`--renderer-process-limit`), a small viewport, no GPU, images and
fonts refused, and pages opened a few at a time (`--open-batch`) so that thirty pages do not parse
the app's scripts at once. A page notes each script-finished message its own websocket receives
(`COUNT_RERUNS`, a few lines of JavaScript), so no frame travels to this process.

- server CPU: the streamlit process's own utime+stime from /proc over the window, in cores (the
  browsers share this machine here but run on the students' computers in a class, so their CPU is
  printed apart, as are the training workers');
- epoch time: the median epoch of the training run during the window, against a window with no
  viewer at all (ratio; a run's first epoch is left out);
- fragment tick: the time between two fragment reruns of a page, from the script-finished
  messages each page's websocket receives (p95 over every page; the live view asks for one a second,
  every 2 s while 5 or more sessions follow the run, every 3 s with 20 or more);
- server RSS: its growth over the window (and over the whole benchmark at the end);

then, `--stops` times, one page clicks Stop and every page waits for "Stopped after epoch": the
p95 from the click (a capturing listener in the page) to the text on the clicking page, and on
every page (a MutationObserver notes when it appears). The next queued run then trains, and the
pages follow it. Goals (issue 13.6, 2 cores): server CPU <= 0.25 core and Stop p95 <= 2 s at N = 30,
RSS growth <= 50 MB over 10 minutes.

    python benchmarks/classroom_load.py [--sessions 1,10,30] [--seconds 60] [--stops 5] [--quick]
        [--pages-per-browser 30] [--open-batch 5]

Prints a table; never fails on a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from cnnlab import specs  # noqa: E402  (after the path is set)
from cnnlab.model import presets  # noqa: E402
from cnnlab.run_request import RunRequest  # noqa: E402
from cnnlab.store.run_store import Store  # noqa: E402
from cnnlab.store.statuses import Status  # noqa: E402
from tests.ports import free_port  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright, ViewportSize

# The design's flags, plus: every page acts as a tab in the foreground on a student's computer.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    # Cheap pages: few renderer processes for many same-site pages, no extensions, no sound.
    "--renderer-process-limit=4",
    "--disable-extensions",
    "--mute-audio",
    "--disable-dev-shm-usage",
]
VIEWPORT: ViewportSize = {"width": 900, "height": 700}
REFUSED = re.compile(r"\.(png|jpe?g|gif|svg|ico|webp|woff2?|ttf|otf)(\?.*)?$")  # images and fonts
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
OWNERS = ("student-a", "student-b", "student-c", "student-d")
INTERACTIVE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
# Notes in the page when the user clicks (capturing, before Streamlit sees it) and when "Stopped" shows.
WATCH_STOP = """() => {
    window.__clickedAt = null; window.__stoppedAt = null;
    document.addEventListener('click', () => { window.__clickedAt = window.__clickedAt || Date.now(); }, true);
    const seen = () => document.body.innerText.includes('Stopped after epoch');
    new MutationObserver(() => { if (!window.__stoppedAt && seen()) window.__stoppedAt = Date.now(); })
        .observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(root: int) -> dict[int, str]:
    """Every live process below `root`, with its command name."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            name = text[text.index("(") + 1 : text.rindex(")")]
            parent = int(text.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append((int(entry.name), name))
    found, waiting = {}, [root]
    while waiting:
        for pid, name in children.get(waiting.pop(), []):
            found[pid] = name
            waiting.append(pid)
    return found


def group_cpu(root: int, keep: str) -> dict[int, float]:
    """CPU seconds of each live process below `root` whose command name contains `keep`."""
    return {pid: cpu_seconds(pid) for pid, name in descendants(root).items() if keep in name}


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile by the nearest-rank rule (nan for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


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


class Classroom:
    """The server, the queue and the browsers of one benchmark."""

    def __init__(self, playwright: Playwright, home: Path, pages_per_browser: int, open_batch: int) -> None:
        self.playwright, self.pages_per_browser, self.open_batch = playwright, pages_per_browser, open_batch
        self.port = free_port()
        environment = {**os.environ, "CNNLAB_HOME": str(home), "CNNLAB_MAX_WORKERS": "1"}
        environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
        command += ["--server.port", str(self.port), "--browser.gatherUsageStats", "false"]
        self.server = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.store = Store(home)
        self.browsers: list[Browser] = []
        self.viewers: list[Viewer] = []
        self.following = ""  # The run the open pages show.
        self.url = f"http://127.0.0.1:{self.port}"
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        # The server starts its scheduler after its first page: open Home once, as the teacher would.
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(self.url)
        page.wait_for_selector(INTERACTIVE, timeout=120_000)
        browser.close()

    def queue_runs(self, count: int, epochs: int = 400) -> None:
        """Queue `count` long digits runs, owners taking turns; the server's scheduler starts them."""
        for index in range(count):
            self.store.create_run(
                RunRequest(
                    spec=presets.get(presets.DEFAULT_PRESET).spec,
                    data_settings=specs.DataSettings(),
                    training_settings=specs.TrainingSettings(epochs=epochs),
                    owner=OWNERS[index % len(OWNERS)],
                    name=f"class run {index + 1}",
                )
            )

    def training_run(self, timeout: float = 300.0) -> str:
        """The id of the run that trains, once it has finished an epoch (waiting for one if needed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = self.store.list_runs(status=[Status.RUNNING])
            if running and running[0].last_epoch >= 1:
                return running[0].id
            time.sleep(0.5)
        raise SystemExit("No run started training; is the queue empty?")

    def open_viewers(self, count: int, run_id: str) -> None:
        """Open `count` pages on the run, `pages_per_browser` per browser process, all in one context."""
        for index in range(count):
            if index % self.pages_per_browser == 0:
                browser = self.playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
                )
                self.browsers.append(browser)
                context = browser.new_context(viewport=VIEWPORT, service_workers="block")
                context.route(REFUSED, lambda route: route.abort())
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
                viewer.page.goto(f"{self.url}/train?run={run_id}", wait_until="commit")
            self._wait_for_run(batch)

    def _wait_for_run(self, batch: list[Viewer]) -> None:
        """Wait until each page of `batch` shows the run's Stop button; measure without a page that does not."""
        for viewer in batch:
            index = self.viewers.index(viewer)
            try:
                viewer.page.get_by_role("button", name="Stop", exact=True).wait_for(timeout=180_000)
            except PlaywrightTimeout:
                # Say what the page shows instead, and measure without it.
                text = viewer.page.inner_text("body")[:300].replace("\n", " | ")
                print(f"page {index} did not show the run within 180 s; it shows: {text}", flush=True)
                viewer.page.screenshot(path=f"{tempfile.gettempdir()}/classroom_load_page_{index}.png")
                self.viewers.remove(viewer)

    def close_viewers(self) -> None:
        for browser in self.browsers:
            browser.close()
        self.browsers, self.viewers, self.following = [], [], ""

    def pump(self, seconds: float) -> None:
        """Let time pass while Playwright delivers the pages' websocket events."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.viewers:
                self.viewers[0].page.wait_for_timeout(min(200, left * 1000))
            else:
                time.sleep(min(0.2, left))

    def window(self, seconds: float) -> dict[str, float]:
        """Measure the server, the training and the pages for `seconds`."""
        run_id = self.training_run()
        me = os.getpid()
        server_before, browsers_before = cpu_seconds(self.server.pid), group_cpu(me, "chrom")
        workers_before = group_cpu(self.server.pid, "python")
        rss_before = rss_megabytes(self.server.pid)
        for viewer in self.viewers:
            viewer.clear()
        first_epoch = self.store.get_run(run_id).last_epoch + 1  # The first one to end inside the window.
        started = time.perf_counter()
        self.pump(seconds)
        elapsed, last_epoch = time.perf_counter() - started, self.store.get_run(run_id).last_epoch
        for viewer in self.viewers:
            viewer.collect()
        epochs = self.store.epoch_metrics(run_id)
        chosen = (epochs["epoch"] >= max(2, first_epoch)) & (epochs["epoch"] <= last_epoch)
        inside = epochs[chosen]
        ticks = [
            later - earlier
            for viewer in self.viewers
            for earlier, later in zip(viewer.finished, viewer.finished[1:], strict=False)
        ]
        return {
            "server_cores": (cpu_seconds(self.server.pid) - server_before) / elapsed,
            "browser_cores": spent(browsers_before, group_cpu(me, "chrom")) / elapsed,
            "worker_cores": spent(workers_before, group_cpu(self.server.pid, "python")) / elapsed,
            "epoch": statistics.median(inside["epoch_seconds"]) if len(inside) else math.nan,
            "epochs": float(len(inside)),
            "tick_p95": percentile(ticks, 0.95),
            "tick_median": statistics.median(ticks) if ticks else math.nan,
            "rss_growth": rss_megabytes(self.server.pid) - rss_before,
            "reruns": float(sum(len(viewer.finished) for viewer in self.viewers)),
            "full_reruns": float(sum(viewer.full_runs for viewer in self.viewers)),
        }

    def stop_trials(self, count: int) -> tuple[list[float], list[float]]:
        """`count` Stop clicks on the followed run: seconds to "Stopped" on the clicking page, on every page."""
        clicker_seconds: list[float] = []
        every_page: list[float] = []
        for trial in range(count):
            run_id = self.training_run()
            self.follow(run_id)
            for viewer in self.viewers:
                viewer.page.evaluate(WATCH_STOP)
            clicker = self.viewers[trial % len(self.viewers)].page
            # As a student clicks: at once, whatever the page is doing.
            try:
                clicker.get_by_role("button", name="Stop", exact=True).click(force=True, timeout=120_000)
            except PlaywrightTimeout:
                print(f"Stop click {trial + 1}: the page did not take the click within 120 s", flush=True)
                clicker_seconds.append(math.inf)
                every_page.append(math.inf)
                continue
            clicked_at = clicker.evaluate("() => window.__clickedAt")
            deadline = time.monotonic() + 120
            stopped: list[Any] = []
            while time.monotonic() < deadline:
                stopped = [viewer.page.evaluate("() => window.__stoppedAt") for viewer in self.viewers]
                if all(stopped):
                    break
                self.pump(0.2)
            seen = [(value - clicked_at) / 1000 if value else math.inf for value in stopped]
            for viewer in self.viewers:
                for problem in viewer.page.get_by_test_id("stException").all():
                    print(f"an exception on a page after Stop: {problem.inner_text()[:600]}", flush=True)
            clicker_seconds.append(seen[trial % len(self.viewers)])
            every_page.extend(seen)
        return clicker_seconds, every_page

    def shutdown(self) -> None:
        self.close_viewers()
        workers = descendants(self.server.pid)
        self.server.terminate()
        self.server.wait(timeout=20)
        for pid in workers:  # The server's workers carry on without it (by design): end them here.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,10,30", help="the numbers of browser pages, e.g. 1,10,30")
    parser.add_argument("--seconds", type=float, default=60.0, help="the measuring window per N")
    parser.add_argument("--stops", type=int, default=5, help="Stop clicks per N")
    parser.add_argument("--pages-per-browser", type=int, default=30)
    parser.add_argument("--open-batch", type=int, default=5, help="pages opened at once")
    parser.add_argument("--quick", action="store_true", help="N = 1 and 3, 15-second windows, 2 stops")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.sessions, arguments.seconds, arguments.stops = "1,3", 15.0, 2
    counts = [int(text) for text in arguments.sessions.split(",")]
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnlab_class_") as home, sync_playwright() as playwright:
        classroom = Classroom(playwright, Path(home), arguments.pages_per_browser, arguments.open_batch)
        try:
            classroom.queue_runs(2 + len(counts) * (arguments.stops + 1))
            rss_start = rss_megabytes(classroom.server.pid)
            baseline = classroom.window(arguments.seconds)
            print(
                f"no viewer: server {baseline['server_cores']:.3f} cores, epoch {baseline['epoch']:.2f} s "
                f"({baseline['epochs']:.0f} epochs), training workers {baseline['worker_cores']:.2f} cores",
                flush=True,
            )
            for count in counts:
                classroom.open_viewers(count, classroom.training_run())
                figures = classroom.window(arguments.seconds)
                print(
                    f"N={count} window: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()), flush=True
                )
                clicker, every_page = classroom.stop_trials(arguments.stops)
                classroom.close_viewers()
                figures["stop_p95"], figures["stop_all_p95"] = (
                    percentile(clicker, 0.95),
                    percentile(every_page, 0.95),
                )
                figures["stop_median"] = statistics.median(clicker)
                rows.append((count, figures))
                print(
                    f"N={count}: " + ", ".join(f"{name} {value:.3f}" for name, value in figures.items()),
                    flush=True,
                )
            rss_total = rss_megabytes(classroom.server.pid) - rss_start
        finally:
            classroom.shutdown()
    print()
    print(
        f"window {arguments.seconds:.0f} s per N, {arguments.stops} Stop clicks per N, "
        f"{arguments.pages_per_browser} pages per browser, one training slot, 2-core machine, "
        f"load average at the end {os.getloadavg()[0]:.1f}"
    )
    print(
        "| N | server CPU (cores) | browsers (cores) | epoch with N / none | Stop p95 clicker (all pages) "
        "| fragment tick p95 (median) | server RSS growth |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for count, figures in rows:
        print(
            f"| {count} | {figures['server_cores']:.3f} | {figures['browser_cores']:.2f} | "
            f"{figures['epoch'] / baseline['epoch']:.2f} ({figures['epoch']:.2f} s / {baseline['epoch']:.2f} s) | "
            f"{figures['stop_p95']:.2f} s ({figures['stop_all_p95']:.2f} s) | "
            f"{figures['tick_p95']:.2f} s ({figures['tick_median']:.2f} s) | {figures['rss_growth']:+.1f} MB |"
        )
    print(f"server RSS growth over the whole benchmark: {rss_total:+.1f} MB")


if __name__ == "__main__":
    main()

"""Cold start: seconds from `streamlit run app.py` to an interactive Home page in Chromium, and to a curve.

The baseline, measured in the same run, is a one-line Streamlit app started the same way, so the
ratio shows what CNN Lab adds to Streamlit's own start-up. Then, on a fresh server, the seconds
from the first click on "Train a digits classifier" (as soon as Home is interactive) to the first
point of the loss curve on screen, and the same for a second click once that run is stopped (a warm
server: the scheduler and a warm worker are ready). Prints; never asserts a timing.

    python benchmarks/cold_start.py [--repeats 3] [--skip-clicks]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BASELINE = 'import streamlit as st\nst.title("Hello")\nst.button("Click me", key="hello")\n'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


FIRST_CURVE_POINT = """() => [...document.querySelectorAll('.js-plotly-plot')].some(chart =>
    (chart._fullLayout?.title?.text || '').replace(/<[^>]*>/g, '') === 'Loss'
    && (chart._fullData || []).some(trace => (trace._length || 0) > 0))"""
INTERACTIVE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def click_to_first_curve_point(page: Page) -> float:
    """Click "Train a digits classifier" on the open Home page; seconds until the loss curve has a point."""
    clicked = time.perf_counter()
    page.get_by_role("button", name="Train a digits classifier").click()
    page.wait_for_function(FIRST_CURVE_POINT, timeout=120_000, polling=50)
    return time.perf_counter() - clicked


def stop_the_followed_run(page: Page) -> None:
    """Click Stop on the Train page and wait until it says the run stopped."""
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("Stopped after epoch").first.wait_for(timeout=60_000)


def time_to_interactive(
    script: Path, ready_text: str, browser: Browser, clicks: list[float] | None = None
) -> tuple[float, float]:
    """Seconds from launching the server to its health check answering, and to the page showing
    `ready_text` with its script finished. With `clicks`, then append the seconds from the first
    click on "Train a digits classifier" to a curve point, and from a second click (warm server)."""
    port = _free_port()
    home = tempfile.mkdtemp(prefix="cnnlab_bench_")
    environment = {**os.environ, "CNNLAB_HOME": home, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(script),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        healthy = time.perf_counter() - started
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text(ready_text).first.wait_for(timeout=60_000)
        page.wait_for_selector(INTERACTIVE, timeout=60_000)
        elapsed = time.perf_counter() - started
        if clicks is not None:
            clicks.append(click_to_first_curve_point(page))
            stop_the_followed_run(page)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text(ready_text).first.wait_for(timeout=60_000)
            page.wait_for_selector(INTERACTIVE, timeout=60_000)
            time.sleep(2.0)  # A reader's pause on Home; the worker that ran the stopped run waits.
            clicks.append(click_to_first_curve_point(page))
            stop_the_followed_run(page)
        page.close()
        return healthy, elapsed
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    """Measure both apps `--repeats` times, alternating, and print medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-clicks", action="store_true", help="measure start-up only, not the clicks")
    arguments = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        baseline = Path(folder) / "hello.py"
        baseline.write_text(BASELINE)
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        lab, hello, clicks = [], [], []
        for _ in range(arguments.repeats):
            hello.append(time_to_interactive(baseline, "Click me", browser))
            lab.append(time_to_interactive(ROOT / "app.py", "Train a digits classifier", browser))
        for _ in range(0 if arguments.skip_clicks else arguments.repeats):
            measured: list[float] = []
            time_to_interactive(ROOT / "app.py", "Train a digits classifier", browser, measured)
            clicks.append(measured)
        browser.close()
    for name, times in (("hello-world Streamlit app", hello), ("CNN Lab home page", lab)):
        server = statistics.median(healthy for healthy, _ in times)
        page = statistics.median(elapsed for _, elapsed in times)
        print(f"{name:<26} server up {server:.2f} s, page interactive {page:.2f} s (medians of {len(times)})")
    ratio = statistics.median(elapsed for _, elapsed in lab) / statistics.median(
        elapsed for _, elapsed in hello
    )
    print(f"ratio CNN Lab / hello-world, page interactive: {ratio:.2f} (goal <= 1.10)")
    if clicks:
        first = [pair[0] for pair in clicks]
        warm = [pair[1] for pair in clicks]
        print(
            f"click to the first curve point: first click after a start {statistics.median(first):.2f} s "
            f"(goal <= 3 s; {', '.join(f'{value:.2f}' for value in first)}), "
            f"warm server {statistics.median(warm):.2f} s (goal <= 1.5 s; {', '.join(f'{value:.2f}' for value in warm)})"
        )


if __name__ == "__main__":
    main()

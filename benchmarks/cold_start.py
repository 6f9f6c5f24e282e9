"""Cold start: seconds from `streamlit run app.py` to an interactive Home page in Chromium.

The baseline, measured in the same run, is a one-line Streamlit app started the same way, so the
ratio shows what CNN Lab adds to Streamlit's own start-up. Prints; never asserts a timing.

    python benchmarks/cold_start.py [--repeats 3]
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


def time_to_interactive(script: Path, ready_text: str, browser) -> tuple[float, float]:
    """Seconds from launching the server to its health check answering, and to the page showing
    `ready_text` with its script finished."""
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
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
        elapsed = time.perf_counter() - started
        page.close()
        return healthy, elapsed
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    """Measure both apps `--repeats` times, alternating, and print medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        baseline = Path(folder) / "hello.py"
        baseline.write_text(BASELINE)
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        lab, hello = [], []
        for _ in range(arguments.repeats):
            hello.append(time_to_interactive(baseline, "Click me", browser))
            lab.append(time_to_interactive(ROOT / "app.py", "Train a digits classifier", browser))
        browser.close()
    for name, times in (("hello-world Streamlit app", hello), ("CNN Lab home page", lab)):
        server = statistics.median(healthy for healthy, _ in times)
        page = statistics.median(elapsed for _, elapsed in times)
        print(f"{name:<26} server up {server:.2f} s, page interactive {page:.2f} s (medians of {len(times)})")
    ratio = statistics.median(elapsed for _, elapsed in lab) / statistics.median(
        elapsed for _, elapsed in hello
    )
    print(f"ratio CNN Lab / hello-world, page interactive: {ratio:.2f}")


if __name__ == "__main__":
    main()

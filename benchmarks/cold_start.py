"""Cold start: seconds from `streamlit run app.py` to an interactive Home page in Chromium, and to a curve.

The baseline, measured in the same run, is a one-line Streamlit app started the same way, so the
ratio shows what CNN Lab adds to Streamlit's own start-up. Then, on a fresh server, the seconds
from the first click on "Train a digits classifier" (as soon as Home is interactive) to the first
point of the loss curve on screen, and the same for a second click once that run is stopped (a warm
server: the scheduler and a warm worker are ready). Each click is split into its stages from the
run store's own timestamps: the click to the run queued, to a worker taking it, to its first batch
metric in the store, and to the point on screen.

With `--compare DIR`, the CNN Lab in DIR (another checkout, for example the last commit extracted
with `git archive HEAD | tar -x -C DIR`) is measured the same way in the same run, alternating,
so a change is judged on the same machine under the same load. Prints; never asserts a timing.

    python benchmarks/cold_start.py [--repeats 3] [--skip-clicks] [--compare DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ports import free_port  # noqa: E402  # After the path is set.

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BASELINE = 'import streamlit as st\nst.title("Hello")\nst.button("Click me", key="hello")\n'
FIRST_CURVE_POINT = """() => [...document.querySelectorAll('.js-plotly-plot')].some(chart =>
    (chart._fullLayout?.title?.text || '').replace(/<[^>]*>/g, '') === 'Loss'
    && (chart._fullData || []).some(trace => (trace._length || 0) > 0))"""
INTERACTIVE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CURVE_TIMEOUT_MS = 120_000
STAGES = ("queued", "worker took it", "first batch metric", "on screen")


@dataclass
class Click:
    """One click on "Train a digits classifier": seconds to the curve (None: not within the timeout)
    and the seconds from the click at which each of `STAGES` was reached, where known."""

    seconds: float | None
    stages: dict[str, float] = field(default_factory=dict)


@dataclass
class Measured:
    """One server start: seconds to its health check and to an interactive page; its clicks."""

    healthy: float
    interactive: float
    clicks: list[Click] = field(default_factory=list)


def click_to_first_curve_point(page: Page) -> tuple[float, float | None]:
    """Click "Train a digits classifier" on the open Home page; return the click's epoch time and the
    seconds until the loss curve has a point (None if it had none within the timeout)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    clicked_at = time.time()
    clicked = time.perf_counter()
    page.get_by_role("button", name="Train a digits classifier").click()
    try:
        page.wait_for_function(FIRST_CURVE_POINT, timeout=CURVE_TIMEOUT_MS, polling=50)
    except PlaywrightTimeout:
        return clicked_at, None
    return clicked_at, time.perf_counter() - clicked


def stages_of_newest_run(home: Path, app_root: Path, clicked_at: float) -> dict[str, float]:
    """The seconds from the click to the newest run's stages, from the store the server wrote."""
    command = [
        sys.executable,
        "-c",
        "import json, sys\n"
        "from cnnlab.store.run_store import Store\n"
        "store = Store(sys.argv[1]); run = store.list_runs(limit=1)[0]\n"
        "events = store.events(run.id); batches = store.batch_metrics(run.id)\n"
        "took = events[events['message'].str.contains('took the run')]['time']\n"
        "print(json.dumps({'queued': run.created_at,\n"
        "  'worker took it': float(took.iloc[0]) if len(took) else None,\n"
        "  'first batch metric': float(batches['time'].iloc[0]) if len(batches) else None}))",
        str(home),
    ]
    environment = {**os.environ, "PYTHONPATH": str(app_root)}
    output = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if output.returncode != 0:
        return {}
    import json

    times: dict[str, float | None] = json.loads(output.stdout)
    return {stage: moment - clicked_at for stage, moment in times.items() if moment is not None}


def stop_the_followed_run(page: Page) -> None:
    """Click Stop on the Train page and wait until it says the run stopped."""
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("Stopped after epoch").first.wait_for(timeout=60_000)


def _one_click(page: Page, home: Path, app_root: Path) -> Click:
    clicked_at, seconds = click_to_first_curve_point(page)
    stages = stages_of_newest_run(home, app_root, clicked_at)
    if seconds is not None:
        stages["on screen"] = seconds
        stop_the_followed_run(page)
    return Click(seconds, stages)


def time_to_interactive(
    script: Path, ready_text: str, browser: Browser, *, app_root: Path = ROOT, clicks: bool = False
) -> Measured:
    """Launch `streamlit run script` in `app_root`; measure the seconds to its health check and to
    the page showing `ready_text` with its script finished. With `clicks`, then the first click on
    "Train a digits classifier" and, back on Home after a reader's pause, a second (warm server)."""
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="cnnlab_bench_"))
    environment = {**os.environ, "CNNLAB_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    environment["PYTHONPATH"] = str(app_root)
    started = time.perf_counter()
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true"]
    command += ["--server.port", str(port), "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(
        command,
        cwd=app_root,
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
        measured = Measured(healthy, time.perf_counter() - started)
        if clicks:
            measured.clicks.append(_one_click(page, home, app_root))
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text(ready_text).first.wait_for(timeout=60_000)
            page.wait_for_selector(INTERACTIVE, timeout=60_000)
            time.sleep(2.0)  # A reader's pause on Home; the worker that ran the stopped run waits.
            measured.clicks.append(_one_click(page, home, app_root))
        page.close()
        return measured
    finally:
        server.terminate()
        server.wait(timeout=10)


def _median(values: list[float | None]) -> str:
    known = [value for value in values if value is not None]
    missing = len(values) - len(known)
    text = f"{statistics.median(known):.2f} s" if known else "none"
    return text + (f" ({missing} of {len(values)} showed no curve within the timeout)" if missing else "")


def report_clicks(name: str, measured: list[Measured]) -> None:
    """Print the medians of the first and the warm click, and of each stage of them."""
    for index, label, goal in ((0, "first click after a start", 3.0), (1, "warm server", 1.5)):
        clicks = [run.clicks[index] for run in measured if len(run.clicks) > index]
        if not clicks:
            continue
        values = ", ".join("-" if click.seconds is None else f"{click.seconds:.2f}" for click in clicks)
        print(f"  {name}, {label}: click to the first curve point {_median([c.seconds for c in clicks])} ")
        print(f"    (goal <= {goal:g} s; each: {values})")
        stages = [
            f"{stage} {statistics.median(known):.2f}"
            for stage in STAGES
            if (known := [click.stages[stage] for click in clicks if stage in click.stages])
        ]
        print(f"    stages, seconds after the click (medians): {'; '.join(stages)}")


def main() -> None:
    """Measure the apps `--repeats` times, alternating, and print medians and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-clicks", action="store_true", help="measure start-up only, not the clicks")
    parser.add_argument("--compare", type=Path, default=None, help="another CNN Lab checkout to measure too")
    arguments = parser.parse_args()
    from playwright.sync_api import sync_playwright

    labs = {"CNN Lab": ROOT} | (
        {f"CNN Lab in {arguments.compare}": arguments.compare} if arguments.compare else {}
    )
    print(f"load average at the start: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        baseline = Path(folder) / "hello.py"
        baseline.write_text(BASELINE)
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        hello: list[Measured] = []
        homes: dict[str, list[Measured]] = {name: [] for name in labs}
        for _ in range(arguments.repeats):
            hello.append(time_to_interactive(baseline, "Click me", browser))
            for name, root in labs.items():
                homes[name].append(
                    time_to_interactive(root / "app.py", "Train a digits classifier", browser, app_root=root)
                )
        hello_page = statistics.median(run.interactive for run in hello)
        print(
            f"{'hello-world Streamlit app':<26} server up {statistics.median(r.healthy for r in hello):.2f} s, "
            f"page interactive {hello_page:.2f} s (medians of {len(hello)})"
        )
        for name, measured in homes.items():
            page = statistics.median(run.interactive for run in measured)
            print(
                f"{name + ' home page':<26} server up {statistics.median(r.healthy for r in measured):.2f} s, "
                f"page interactive {page:.2f} s; ratio to hello-world {page / hello_page:.2f} (goal <= 1.10)"
            )
        print(
            f"load average after start-up: {' '.join(f'{value:.2f}' for value in os.getloadavg())}",
            flush=True,
        )
        if not arguments.skip_clicks:
            clicked: dict[str, list[Measured]] = {name: [] for name in labs}
            for _ in range(arguments.repeats):
                for name, root in labs.items():
                    clicked[name].append(
                        time_to_interactive(
                            root / "app.py", "Train a digits classifier", browser, app_root=root, clicks=True
                        )
                    )
            for name, measured in clicked.items():
                report_clicks(name, measured)
        browser.close()
    print(f"load average at the end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()

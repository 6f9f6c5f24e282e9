"""Evaluate after a server start: seconds from `streamlit run app.py` to the Evaluate page of a run
shown in Chromium (its metrics, confusion matrix and mistakes, the script finished).

Usage: python benchmarks/evaluate_open.py [--home HOME --run RUN_ID] [--repeats 3] [--compare DIR]

Without --home it trains the default digits CNN for 3 epochs in a temporary home first; the worker
saves each checkpoint's test scores when training ends (`cnnlab.trained.saved_scores`). Two cases:

- "no saved scores": the scores are deleted first, as for a run trained before the worker saved
  them, or on a Ray cluster: TensorFlow starts, the model predicts the test split, the page saves
  the scores;
- "saved scores" (every new run): the page opens without TensorFlow, the model loading in the
  background for the Grad-CAM overlays, which follow.

For each start it prints the time to the health check, to the summary (the metrics), to the whole
page (from the server's launch and from the browser's request) and to the Grad-CAM overlays.
The baseline, measured in the same run: a one-line Streamlit app started and opened the same way;
the ratio is CNN Lab's median over the baseline's. Goal: the page in at most 3 s after a server
start. With `--compare DIR`, the CNN Lab in DIR (another checkout, for example the last commit
extracted with `git archive HEAD | tar -x -C DIR`) opens the same run too, alternating, so a change
is judged on the same machine under the same load. Prints; never asserts a timing.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cold_start import CHROMIUM_FLAGS  # noqa: E402  # After the path is set.
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402  # Same.
from predict_latency import train_run  # noqa: E402  # Same.

from tests.ports import free_port  # noqa: E402  # Same.

SERVER_FLAGS = ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
OVERLAY_TIMEOUT_MS = 300_000
BASELINE = 'import streamlit as st\nst.title("Hello world")\n'


def _start(script: str, cwd: Path, environment: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, float]:
    """`streamlit run script` on a free port, waited for until healthy: (server, port, launch time)."""
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, *SERVER_FLAGS, "--server.port", str(port)],
        cwd=cwd,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                return server, port, started
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"streamlit run {script} exited with {server.returncode}") from None
            time.sleep(0.05)


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=20)


def open_hello_world(folder: Path, browser: Any) -> dict[str, float]:
    """The baseline: a one-line Streamlit app started and opened the same way; seconds per stage."""
    script = folder / "hello.py"
    script.write_text(BASELINE)
    server, port, started = _start(str(script), folder, dict(os.environ))
    try:
        healthy = time.perf_counter() - started
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        requested = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text("Hello world").first.wait_for(timeout=120_000)
        page.wait_for_selector(DONE, timeout=120_000)
        shown = time.perf_counter()
        page.close()
        return {
            "health check": healthy,
            "page shown, from launch": shown - started,
            "page shown, from request": shown - requested,
        }
    finally:
        _stop(server)


def open_evaluate(
    home: Path, run_id: str, browser: Any, scores_saved: bool, app_root: Path = ROOT
) -> dict[str, float]:
    """Start the server of the CNN Lab in `app_root` on `home`, open Evaluate on `run_id`; the seconds
    each stage took."""
    environment = {**os.environ, "CNNLAB_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(app_root), os.environ.get("PYTHONPATH")]))
    server, port, started = _start("app.py", app_root, environment)
    try:
        healthy = time.perf_counter() - started
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        requested = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/evaluate?run={run_id}")
        page.get_by_test_id("stMetricLabel").filter(has_text="Test accuracy").first.wait_for(timeout=120_000)
        summary = time.perf_counter()
        page.get_by_text("Most confident mistakes").first.wait_for(timeout=120_000)
        if scores_saved:
            # The page's run ends with the mistakes and a caption while the model loads for the
            # overlays; polls for the model follow, so "not running" comes and goes.
            page.get_by_text("Loading the model for Grad-CAM").first.wait_for(timeout=120_000)
        else:
            page.wait_for_selector(DONE, timeout=120_000)
        shown = time.perf_counter()
        try:  # On a loaded machine TensorFlow may take minutes to start: the overlays are then "nan".
            waiting = page.get_by_text("Loading the model for Grad-CAM").first
            waiting.wait_for(state="detached", timeout=OVERLAY_TIMEOUT_MS)
            page.wait_for_selector(DONE, timeout=OVERLAY_TIMEOUT_MS)
            overlays = time.perf_counter()
        except PlaywrightTimeout:
            overlays = float("nan")
        page.close()
        return {
            "health check": healthy,
            "summary shown, from request": summary - requested,
            "page shown, from launch": shown - started,
            "page shown, from request": shown - requested,
            "Grad-CAM shown, from launch": overlays - started,
        }
    finally:
        _stop(server)


def _report(label: str, runs: list[dict[str, float]]) -> dict[str, float]:
    """Print each stage's median (and every value) of `runs`; return the medians."""
    medians = {}
    for name in runs[0]:
        values = [times[name] for times in runs]
        medians[name] = statistics.median(values)
        print(
            f"{label:24s} {name:30s} median {medians[name]:.2f} (of {len(values)}: "
            + ", ".join(f"{value:.2f}" for value in values)
            + ")"
        )
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--run", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", type=Path, default=None, help="another CNN Lab checkout to measure too")
    arguments = parser.parse_args()
    home = arguments.home or Path(tempfile.mkdtemp(prefix="evaluate_benchmark_"))
    os.environ["CNNLAB_HOME"] = str(home)
    run_id = arguments.run or train_run(home)
    scores = home / "cache" / "evaluations"
    labs = {"CNN Lab": ROOT} | (
        {f"CNN Lab in {arguments.compare}": arguments.compare} if arguments.compare else {}
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        hello: list[dict[str, float]] = []
        measured: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(arguments.repeats):  # Interleaved, so a change in the machine's load hits every case.
            hello.append(open_hello_world(home, browser))
            for name, root in labs.items():
                for path in sorted(scores.glob("*.npz")) if scores.is_dir() else []:
                    path.unlink()  # As for a run whose scores were never saved.
                for case, saved in (("no saved scores", False), ("saved scores", True)):
                    opened = open_evaluate(home, run_id, browser, scores_saved=saved, app_root=root)
                    measured.setdefault((name, case), []).append(opened)
        browser.close()
    print(f"Evaluate page of run {run_id} in {home}, seconds; load average {os.getloadavg()}")
    baseline = _report("hello-world app", hello)
    for (name, case), runs in measured.items():
        label = case if len(labs) == 1 else f"{name}, {case}"
        medians = _report(label, runs)
        shown, reference = medians["page shown, from launch"], baseline["page shown, from launch"]
        requested = medians["page shown, from request"]
        print(
            f"{label}: page shown {shown:.2f} s after a server start (goal 3 s, ratio {shown / 3:.2f}); "
            f"ratio to the hello-world app {shown / reference:.2f} from launch, "
            f"{requested / baseline['page shown, from request']:.2f} from the browser's request"
        )


if __name__ == "__main__":
    main()

"""Evaluate after a server start: seconds from `streamlit run app.py` to the Evaluate page of a run
shown in Chromium (its metrics, confusion matrix and mistakes, the script finished).

Usage: python benchmarks/evaluate_open.py [--home HOME --run RUN_ID] [--repeats 3]

Without --home it trains the default digits CNN for 3 epochs in a temporary home first. The first
start evaluates the checkpoint (TensorFlow starts, the model predicts the test split, the scores
are saved); every later start finds the scores on disk and opens without TensorFlow, the model
loading in the background for the Grad-CAM overlays, which follow. For each start it prints the
time to the health check, to the page shown (from the server's launch, and from the browser's
request), and to the Grad-CAM overlays. Goal: the page in at most 3 s after a server start.
Prints; never asserts a timing.
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

from cold_start import CHROMIUM_FLAGS, _free_port  # noqa: E402  # After the path is set.
from predict_latency import train_run  # noqa: E402  # Same.

SERVER_FLAGS = ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def open_evaluate(home: Path, run_id: str, browser: Any, scores_saved: bool) -> dict[str, float]:
    """Start a server on `home`, open Evaluate on `run_id`; the seconds each stage took."""
    port = _free_port()
    environment = {**os.environ, "CNNLAB_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", *SERVER_FLAGS, "--server.port", str(port)],
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
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        requested = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/evaluate?run={run_id}")
        page.get_by_test_id("stMetricLabel").filter(has_text="Test accuracy").first.wait_for(timeout=120_000)
        page.get_by_text("Most confident mistakes").first.wait_for(timeout=120_000)
        if scores_saved:
            # The page's run ends with the mistakes and a caption while the model loads for the
            # overlays; polls for the model follow, so "not running" comes and goes.
            page.get_by_text("Loading the model for Grad-CAM").first.wait_for(timeout=120_000)
        else:
            page.wait_for_selector(DONE, timeout=120_000)
        shown = time.perf_counter()
        page.get_by_text("Loading the model for Grad-CAM").first.wait_for(state="detached", timeout=120_000)
        page.wait_for_selector(DONE, timeout=120_000)
        overlays = time.perf_counter()
        page.close()
        return {
            "health check": healthy,
            "page shown, from launch": shown - started,
            "page shown, from request": shown - requested,
            "Grad-CAM shown, from launch": overlays - started,
        }
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--run", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    home = arguments.home or Path(tempfile.mkdtemp(prefix="evaluate_benchmark_"))
    os.environ["CNNLAB_HOME"] = str(home)
    run_id = arguments.run or train_run(home)
    scores = home / "cache" / "evaluations"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        saved = sorted(scores.glob("*.npz")) if scores.is_dir() else []
        for path in saved:  # The first start evaluates from scratch.
            path.unlink()
        first = open_evaluate(home, run_id, browser, scores_saved=False)
        later = [open_evaluate(home, run_id, browser, scores_saved=True) for _ in range(arguments.repeats)]
        browser.close()
    print(f"Evaluate page of run {run_id} in {home}, seconds")
    print(
        "first start (no saved scores):  " + ", ".join(f"{name} {value:.2f}" for name, value in first.items())
    )
    for name in first:
        values = [times[name] for times in later]
        print(
            f"later starts, {name:30s} median {statistics.median(values):.2f} (of {len(values)}: "
            + ", ".join(f"{value:.2f}" for value in values)
            + ")"
        )
    shown = statistics.median(times["page shown, from launch"] for times in later)
    print(f"page shown after a server start: {shown:.2f} s against a goal of 3 s (ratio {shown / 3:.2f})")


if __name__ == "__main__":
    main()

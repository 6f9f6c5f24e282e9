"""A class on one server: what N students following a live run cost, while runs of several owners train and queue.

One `streamlit run app.py` on a free port with its own CNNLAB_HOME and one training slot; this
process queues long digits runs for four owners in the same store and the server's scheduler runs
them (fair turns, one trains, the others wait). Then, for each N (default 1, 30, 100, 300):

1. N viewers open the run that trains as a browser tab would (`/train?run=R`), a few at a time: a
   Streamlit session spoken at the protocol level (`benchmarks/streamlit_protocol.py`: it answers
   `auto_rerun` as the front end does) and, once the page has run, a subscriber on the run's live
   stream (`benchmarks/stream_subscribers.py`), as the page's chart opens it. No browser runs for
   them: on a class's server the students' browsers are on their own computers.
2. A window of `--window` seconds (600 by default, the issue's 10 minutes; `--quick`: 20) measures
   the server's CPU in cores from its own utime+stime in /proc, its RSS growth, the median epoch of
   the training run against a window with no viewer at all (ratio), and the delay from each
   record's `written_at` (the worker's clock) to its arrival at every subscriber (p95).
3. `--stops` times, two real Chromium pages (`benchmarks/chromium_pages.py`) open the training
   run, the first clicks Pause, then Resume, then Stop, and each notes when "Paused after epoch",
   "Training: epoch" and "Stopped after epoch" appear: the Pause, Resume and Stop p95 on screen
   (both pages); the subscribers note when the stopped status reaches them. The next queued
   run then trains and the viewers follow it.
4. The queue is emptied and the last run stopped; on the idle, warm server the first page clicks
   "Train a digits classifier" on Home: seconds to the first point of the loss curve.

Goals (issue 22, 2 cores): server CPU at most 0.05 core at N = 30 and 0.25 at N = 300; record-to-viewer
delay p95 at most 0.5 s and Stop p95 on screen at most 1 s at N = 30; the first curve point at most
1 s after the click on a warm server; the epoch with 30 viewers within 5% of none. Where the server
has no run stream yet, the viewers are the page sessions alone and the delays read "n/a".

    python benchmarks/classroom_load.py [--sessions 1,30,100,300] [--window 600] [--stops 3] [--quick]
    python benchmarks/classroom_load.py --mode chromium [--sessions 1,3] [--pages-per-browser 30] [--open-batch 5]

`--mode chromium` is the older benchmark, one Chromium page per viewer on this machine
(`benchmarks/classroom_chromium.py`). Prints tables; never fails on a timing.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import class_server, classroom_chromium, process_figures  # noqa: E402  (after the path is set)
from benchmarks.chromium_pages import PagePair  # noqa: E402
from benchmarks.class_viewers import ViewerCrowd  # noqa: E402
from cnnlab.classroom.users import LOCAL_USER  # noqa: E402

# A window's run must outlast the window and the opening of the tabs (a minute or two at N = 300).
FRESH_MARGIN_SECONDS = 180.0
IDLE_SECONDS = 3.0  # after the slot is cleared, before the click: the worker that stopped waits, warm


def stream_url_maker(server: class_server.ClassServer) -> Callable[[str], str] | None:
    """The address of a run's stream with a token minted as the page mints it (the local user: the
    server runs without a classroom), or None if this version of the app has no stream."""
    try:
        from cnnlab.classroom.stream_tokens import mint_stream_token
    except ImportError:
        return None

    def address(run_id: str) -> str:
        token = mint_stream_token(server.home, LOCAL_USER.id, run_id)
        return f"{server.url}/cnnlab/stream/runs/{run_id}?token={token}"

    return address


def quick_look(figures: dict[str, float], name: str, unit: str = "s") -> str:
    """A figure for the table, 'n/a' when it was not measured."""
    value = figures.get(name, math.nan)
    if math.isinf(value):
        return "not seen"
    return "n/a" if math.isnan(value) else f"{value:.2f} {unit}".strip()


def one_count(
    server: class_server.ClassServer,
    crowd: ViewerCrowd,
    pair: PagePair,
    count: int,
    arguments: argparse.Namespace,
) -> dict[str, float]:
    """Steps 1-4 of the module's docstring for N = `count`; the figures."""
    if server.queued_count() < arguments.stops:
        server.queue_runs(arguments.stops + 1 - server.queued_count())
    rss_before_open = server.rss_megabytes()
    opened = crowd.follow(server.fresh_training_run(arguments.window + FRESH_MARGIN_SECONDS), count)
    print(
        f"N={count}: tabs open, p95 {process_figures.percentile(opened.seconds, 0.95):.2f} s to a page, "
        f"{opened.failed} failed, {opened.subscribed} subscribed ({opened.from_page} at the page's address), "
        f"{len(opened.exceptions)} exceptions "
        f"{opened.exceptions[:1]}, server RSS {server.rss_megabytes() - rss_before_open:+.1f} MB",
        flush=True,
    )
    pair.park()
    crowd.start_window()
    figures = class_server.measure_window(server, arguments.window, time.sleep)
    figures.update(crowd.figures())
    figures["open_p95"] = process_figures.percentile(opened.seconds, 0.95)
    figures["rss_per_tab"] = (server.rss_megabytes() - rss_before_open - figures["rss_growth"]) / count
    on_screen: list[float] = []
    pause_on_screen: list[float] = []  # Pause click to "Paused after epoch", on both pages
    resume_on_screen: list[float] = []  # then Resume click to "Training: epoch"
    at_subscribers: list[float] = []
    stop_cpu: list[float] = []  # server CPU seconds from before the click until both pages said "Stopped"
    stop_news: list[int] = []  # page reruns the viewers' watch components asked for meanwhile
    for _ in range(arguments.stops):
        run_id = server.training_run()
        if crowd.following != run_id:
            crowd.follow(run_id, count)
        pair.follow(run_id)
        paused, resumed = pair.pause_resume_trial()
        pause_on_screen.extend(paused)
        resume_on_screen.extend(resumed)
        news_before, cpu_before = crowd.news_sent(), server.cpu_seconds()
        clicked_at, seen = pair.stop_trial()
        stop_cpu.append(server.cpu_seconds() - cpu_before)
        stop_news.append(crowd.news_sent() - news_before)
        pair.screenshots(arguments.screenshots, f"stop_n{count}")
        on_screen.extend(seen)
        at_subscribers.extend(crowd.status_arrivals(clicked_at, "stopped"))
        for problem in pair.exceptions():
            print(f"an exception on a page after Stop: {problem}", flush=True)
    figures["stop_p95"] = process_figures.percentile(on_screen, 0.95)
    figures["pause_p95"] = process_figures.percentile(pause_on_screen, 0.95)
    figures["resume_p95"] = process_figures.percentile(resume_on_screen, 0.95)
    figures["stop_stream_p95"] = process_figures.percentile(at_subscribers, 0.95)
    figures["stop_server_cpu"] = statistics.median(stop_cpu) if stop_cpu else math.nan
    figures["stop_news"] = statistics.median(stop_news) if stop_news else math.nan
    server.clear_the_slot()
    time.sleep(IDLE_SECONDS)
    figures["first_point"] = pair.click_trial()
    pair.screenshots(arguments.screenshots, f"first_point_n{count}")
    server.clear_the_slot()
    print(f"N={count}: " + ", ".join(f"{name} {value:.3f}" for name, value in figures.items()), flush=True)
    return figures


def print_table(
    arguments: argparse.Namespace, baseline: dict[str, float], rows: list[tuple[int, dict[str, float]]]
) -> None:
    """The results as a Markdown table, with the conditions of the run."""
    print(
        f"\nwindow {arguments.window:.0f} s per N, {arguments.stops} Stop clicks per N, one training slot, "
        f"{os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f}; no viewer: server "
        f"{baseline['server_cores']:.3f} cores, epoch {baseline['epoch']:.2f} s"
    )
    print(
        "| N | server CPU (cores) | record to viewer p95 (median) | epoch with N / none | Stop p95 on screen "
        "| Pause / Resume p95 on screen | Stop to the subscribers p95 | a Stop's page reruns (server CPU) | click to first point | server RSS growth (per tab) | tab open p95 "
        "| script reruns in the window | clients (cores) |"
    )
    print("| --- " * 13 + "|")
    for count, figures in rows:
        print(
            f"| {count} | {figures['server_cores']:.3f} | {quick_look(figures, 'delay_p95')} "
            f"({quick_look(figures, 'delay_median')}) | {figures['epoch_ratio']:.2f} "
            f"({figures['epoch']:.2f} s / {baseline['epoch']:.2f} s) | {quick_look(figures, 'stop_p95')} "
            f"| {quick_look(figures, 'pause_p95')} / {quick_look(figures, 'resume_p95')} "
            f"| {quick_look(figures, 'stop_stream_p95')} | {figures['stop_news']:.0f} ({figures['stop_server_cpu']:.1f} s) "
            f"| {quick_look(figures, 'first_point')} "
            f"| {figures['rss_growth']:+.1f} MB ({figures['rss_per_tab']:+.2f} MB) | {quick_look(figures, 'open_p95')} "
            f"| {figures['page_reruns']:.0f} pages, {figures['fragment_reruns']:.0f} fragments "
            f"| {figures['client_cores']:.2f} |"
        )


# Issue 22's goals: (figure, N, the most it may be, how the table names it).
GOALS = (
    ("server_cores", 30, 0.05, "server CPU (cores)"),
    ("server_cores", 300, 0.25, "server CPU (cores)"),
    ("delay_p95", 30, 0.5, "record to viewer p95 (s)"),
    ("stop_p95", 1, 1.0, "Stop p95 on screen (s)"),
    ("resume_p95", 1, 1.0, "Resume p95 on screen (s)"),
    ("stop_p95", 30, 1.0, "Stop p95 on screen (s)"),
    ("resume_p95", 30, 1.0, "Resume p95 on screen (s)"),
    ("first_point", 30, 1.0, "click to first point, warm server (s)"),
    ("epoch_ratio", 30, 1.05, "epoch with N / none"),
)


def print_goals(rows: list[tuple[int, dict[str, float]]]) -> None:
    """Each of issue 22's goals whose N was measured: the figure and whether it is met."""
    measured = dict(rows)
    for name, count, most, words in GOALS:
        if count in measured and not math.isnan(value := measured[count].get(name, math.nan)):
            verdict = "met" if value <= most else f"NOT met ({value / most:.1f}x the goal)"
            print(f"goal: {words} at N = {count} at most {most:g}: {value:.3f}, {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("protocol", "chromium"), default="protocol")
    parser.add_argument(
        "--sessions", default="1,30,100,300", help="the numbers of viewers, e.g. 1,30,100,300"
    )
    parser.add_argument(
        "--window", "--seconds", type=float, default=600.0, help="the measuring window per N, in seconds"
    )
    parser.add_argument("--stops", type=int, default=3, help="Stop clicks per N")
    parser.add_argument("--quick", action="store_true", help="20-second windows and 2 Stop clicks per N")
    parser.add_argument(
        "--screenshots", type=Path, help="a folder for the Chromium pages after Stop and the click"
    )
    parser.add_argument("--open-at-once", type=int, default=10, help="tabs opening at once (protocol mode)")
    parser.add_argument("--pages-per-browser", type=int, default=30, help="chromium mode")
    parser.add_argument("--open-batch", type=int, default=5, help="pages opened at once (chromium mode)")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.window, arguments.stops = 20.0, 2
    counts = [int(text) for text in arguments.sessions.split(",")]
    if arguments.mode == "chromium":
        classroom_chromium.run(arguments, counts)
        return
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnlab_class_") as home, sync_playwright() as playwright:
        server = class_server.ClassServer(Path(home))
        crowd = ViewerCrowd(server.url, stream_url_maker(server), arguments.open_at_once)
        pair = PagePair(playwright, server.url)
        try:
            server.queue_runs(arguments.stops + 1)
            rss_start = server.rss_megabytes()
            # One tab opens the Train page once and leaves, so the server has loaded the page's modules
            # before anything is measured (the first tab of a server pays for that, not the Nth).
            crowd.follow(server.fresh_training_run(arguments.window + FRESH_MARGIN_SECONDS), 1)
            crowd.follow(crowd.following, 0)
            baseline = class_server.measure_window(server, arguments.window, time.sleep)
            print(
                "no viewer: " + ", ".join(f"{name} {value:.3f}" for name, value in baseline.items()),
                flush=True,
            )
            rows = [(count, one_count(server, crowd, pair, count, arguments)) for count in counts]
            rss_total = server.rss_megabytes() - rss_start
        finally:
            crowd.close()
            pair.close()
            server.shutdown()
    for _, figures in rows:
        figures["epoch_ratio"] = figures["epoch"] / baseline["epoch"]
    print_table(arguments, baseline, rows)
    print_goals(rows)
    print(f"server RSS growth over the whole benchmark: {rss_total:+.1f} MB")


if __name__ == "__main__":
    main()

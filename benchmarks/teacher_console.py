"""What one refresh of the teacher's console costs the server, for a class of 30.

The console's table redraws every couple of seconds while a run is live. One tick reads the list of
runs (one query, with each run's last epoch and validation accuracy) and each live run's last event,
and builds the table (`cnnlab.classroom.overview.class_overview`); ended runs' last events are
cached by the page, so a tick reads them once. This script fills a store with 30 students' runs
(live and ended, with epoch metrics and events), then times that tick with the Store directly (no
Streamlit) and prints the median and the share of one core it takes at one tick every 2 s.

    python benchmarks/teacher_console.py [--students 30] [--runs-per-student 3] [--ticks 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cnnlab.classroom import overview
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

TICK_SECONDS = 2.0


def fill(store: Store, students: int, runs_per_student: int, epochs: int) -> None:
    """Runs for each student: the newest one running, the others completed, each with its epochs and events."""
    spec = presets.get(presets.DEFAULT_PRESET).spec
    for student in range(students):
        for number in range(runs_per_student):
            run = store.create_run(
                RunRequest(
                    spec=spec,
                    data_settings=DataSettings(),
                    training_settings=TrainingSettings(epochs=epochs),
                    owner=f"student:s{student:02d}",
                    exercise="week 3",
                ),
                status=Status.RUNNING if number == runs_per_student - 1 else Status.COMPLETED,
            )
            for epoch in range(1, epochs + 1):
                store.add_epoch_metrics(
                    run.id, {"epoch": epoch, "loss": 1 / epoch, "accuracy": 0.9, "val_accuracy": 0.8}
                )
                store.log_event(run.id, f"epoch {epoch} done")
            if number < runs_per_student - 1:
                store.set_results(run.id, {"test_accuracy": 0.9 + number / 100})


def tick(store: Store, ended_cache: dict[str, str]) -> int:
    """One console refresh; returns the number of rows."""
    runs = store.list_runs()
    events: dict[str, str] = {}
    for run in runs:
        if not run.is_active and run.id in ended_cache:
            events[run.id] = ended_cache[run.id]
            continue
        table = store.events(run.id)
        events[run.id] = "" if table.empty else str(table["message"].iloc[-1])
        if not run.is_active:
            ended_cache[run.id] = events[run.id]
    return len(overview.class_overview(runs, events))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--runs-per-student", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=50)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder))
        fill(store, arguments.students, arguments.runs_per_student, arguments.epochs)
        cache: dict[str, str] = {}
        rows = tick(store, cache)  # The first tick also fills the cache of ended runs' last events.
        durations = []
        for _ in range(arguments.ticks):
            started = time.perf_counter()
            tick(store, cache)
            durations.append(time.perf_counter() - started)
        board = overview.leaderboard(store.list_runs(), "week 3")
        started = time.perf_counter()
        overview.leaderboard(store.list_runs(), "week 3")
        leaderboard_seconds = time.perf_counter() - started
    median = statistics.median(durations)
    print(
        f"class: {arguments.students} students, {rows} runs ({arguments.students} live), {arguments.epochs} epochs"
    )
    print(
        f"console tick (list + live runs' last events + table): median {median * 1000:.1f} ms, "
        f"max {max(durations) * 1000:.1f} ms over {arguments.ticks} ticks"
    )
    print(f"share of one core at one tick every {TICK_SECONDS:g} s: {median / TICK_SECONDS:.3f}")
    print(
        f"leaderboard of {len(board)} finished runs (list + parameter counts): {leaderboard_seconds * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()

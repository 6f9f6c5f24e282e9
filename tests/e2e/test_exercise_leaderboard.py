"""A continued run does not take the lead beyond its exercise, in Chromium on a class's server.

The exercise "Week 3" locks the epochs at 2. Ada's run of it tested at 90 %; Bo's two runs at 85 %
and 80 %. Bo continues his weaker run for 40 more epochs from the Train page: he is warned first,
and the run leaves the exercise. When it ends at 99 % (recorded into the store, as its worker would:
no training here), the teacher's leaderboard still ranks Ada first and Bo's best run of the
exercise second, and not the continued run. One slot, held by a stand-in worker's run, keeps the
server from starting a worker for the continued run.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from made_runs import make_run, reached

from cnnlab.model import presets
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.e2e.app_servers import LIGHT_JOBS
from tests.e2e.classroom_servers import classroom_toml, running_app, sign_in_with_code
from tests.e2e.conftest import go_to, screenshot, wait_for_app
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e]

EXERCISE = "Week 3"
# The rows of the table whose header names `column`, as text: the leaderboard among the console's tables.
TABLE_ROWS_SCRIPT = """column => {
    for (const frame of document.querySelectorAll('[data-testid="stDataFrame"]')) {
        const rows = [...frame.querySelectorAll('tr')].map(row => [...row.querySelectorAll('td, th')].map(
            cell => cell.textContent.trim()));
        if (rows.length && rows[0].includes(column)) return rows;
    }
    return [];
}"""


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A class with join codes and one training slot (no run trains here: its workers run the light
    job). (URL, home)."""
    home = tmp_path_factory.mktemp("exercise_leaderboard_home")
    (home / "classroom.toml").write_text(classroom_toml(limits={"max_epochs": "none"}))
    with running_app({"CNNLAB_HOME": str(home), "CNNLAB_MAX_WORKERS": "1", **LIGHT_JOBS}) as url:
        yield url, home


@pytest.fixture
def stand_in_worker() -> Iterator[int]:
    """The pid of a live process named like a CNN Lab worker: the server sees its run as training."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "cnnlab-stand-in-worker"],
        stdin=subprocess.PIPE,
    )
    yield process.pid
    process.kill()
    process.wait()


def exercise_run(store: Store, owner: str, name: str, test_accuracy: float) -> str:
    """A completed 2-epoch run of the exercise (epochs locked) with its checkpoints and test accuracy."""
    run = make_run(
        store,
        spec=presets.get("mnist_minimal").spec,
        epochs=2,
        name=name,
        owner=owner,
        exercise=EXERCISE,
        exercise_locked=frozenset({"epochs"}),
        status=Status.STARTING,  # Not queued: the server's scheduler would race the test to start it.
    )
    reached(store, run.id, Status.RUNNING)
    for epoch in (1, 2):
        store.add_epoch_metrics(run.id, {"epoch": epoch, "loss": 0.5, "accuracy": 0.8, "val_accuracy": 0.8})
        for which in ("latest", epoch):
            store.save_checkpoint(run.id, which, epoch, lambda path: path.write_bytes(b"weights"))
    store.set_status(run.id, Status.COMPLETED)
    store.set_results(run.id, {"test_accuracy": test_accuracy})
    return run.id


def test_a_continued_run_does_not_take_the_lead_beyond_its_exercise(
    classroom: tuple[str, Path], new_page: Callable[[], Page], stand_in_worker: int
) -> None:
    url, home = classroom
    store = Store(home)
    holder = make_run(store, owner="teacher:tess", name="the class example", status=Status.STARTING)
    reached(store, holder.id, Status.RUNNING)
    store.heartbeat(holder.id, stand_in_worker)  # Holds the one slot: Bo's continued run stays queued.
    exercise_run(store, "student:ada", "ada's net", 0.90)

    bo = new_page()
    sign_in_with_code(bo, url, "Bo")
    # Bo's one-click run on Home (it waits in the queue) tells his user id, whatever makes ids.
    bo.get_by_role("button", name="Train a digits classifier").click()
    wait_until(lambda: len(store.list_runs(status=Status.QUEUED)) == 1, "Bo's first run to be queued", 30)
    (first,) = store.list_runs(status=Status.QUEUED)
    store.set_status(first.id, Status.STOPPED, reason="Stopped before it started.")
    bo_best = exercise_run(store, first.owner, "bo's first net", 0.85)
    bo_continued = exercise_run(store, first.owner, "bo's second net", 0.80)
    bo.goto(f"{url}/train?run={bo_continued}")
    wait_for_app(bo)
    bo.get_by_role("button", name="Continue", exact=True).click()
    bo.get_by_role("spinbutton", name="More epochs", exact=True).fill("40")
    bo.get_by_role("spinbutton", name="More epochs", exact=True).press("Enter")
    wait_for_app(bo)
    warning = bo.get_by_text("continuing past them takes this run out of the exercise")
    warning.wait_for()
    assert "fixes 2 epochs" in warning.inner_text()
    bo.get_by_role("button", name="Continue training", exact=True).click()
    # Queued first, then out of the exercise (`RunAccess.continue_run`): wait for the second.
    wait_until(lambda: store.get_run(bo_continued).exercise is None, "Bo's run to leave the exercise", 60)
    assert store.get_run(bo_continued).status != Status.COMPLETED  # Queued again (or already starting).
    assert store.get_run(bo_continued).training().epochs == 42
    # It trains as its worker would record it, and ends far ahead of everyone.
    reached(store, bo_continued, Status.RUNNING)
    store.add_epoch_metrics(bo_continued, {"epoch": 42, "loss": 0.1, "accuracy": 0.99, "val_accuracy": 0.99})
    store.set_status(bo_continued, Status.COMPLETED)
    store.set_results(bo_continued, {"test_accuracy": 0.99})
    store.heartbeat(holder.id, stand_in_worker)

    teacher = new_page()
    sign_in_with_code(teacher, url, "Tess", role="teacher")
    go_to(teacher, "Teacher")
    teacher.get_by_text("Each student's best run of the exercise").wait_for()
    teacher.wait_for_function(f"() => ({TABLE_ROWS_SCRIPT})('test accuracy').length > 1")
    rows = [row for row in teacher.evaluate(TABLE_ROWS_SCRIPT, "test accuracy") if row]
    header, ranked = rows[0], rows[1:]
    run_column, rank_column = header.index("run"), header.index("rank")
    assert [(row[rank_column], row[run_column]) for row in ranked] == [
        ("1", "ada's net"),
        ("2", "bo's first net"),
    ]
    assert store.get_run(bo_best).exercise == EXERCISE
    screenshot(teacher, "exercise_leaderboard")

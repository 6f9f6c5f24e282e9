"""Owned runs and the fair queue in the browser: two students who joined with the class code each see
only their own runs, a hand-made link to the other's run says "not yours", and one student's queued
runs start in fair turn with the other's (one worker at a time, `CNNLAB_MAX_WORKERS=1`).

The runs are queued in the server's store while a stand-in "worker" (a live process named like
one) holds the only slot, so all of them wait; then the slot is freed and the server's scheduler
starts them in turn (the test ends each at once, as `kill` does, to free the slot for the next).
The server's workers run the light job that records batches until it is stopped
(`UNTIL_STOPPED_JOBS`): a started run holds the slot until the test frees it, whatever the load.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from waiting import wait_until

from cnnlab import share, specs
from cnnlab.classroom import uploads
from cnnlab.classroom.users import Role, User
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.e2e.app_servers import UNTIL_STOPPED_JOBS
from tests.e2e.classroom_servers import (
    classroom_toml,
    known_openid_user,
    oidc_provider,  # noqa: F401  (a fixture of this module)
    oidc_secrets,
    running_app,
    sign_in_oidc,
)
from tests.e2e.conftest import ROWS_SCRIPT, screenshot, wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NOT_YOURS = "is not one you can open: it does not exist, or it is another student's"
NAMES = {"holds the slot", "ada first", "ada second", "bob only"}


# Students signed in through the school's OpenID provider: known to the store by the provider's subject.
ADA, BOB = "user:ada0000000000000", "user:bob0000000000000"


@pytest.fixture(scope="module")
def classroom(
    tmp_path_factory: pytest.TempPathFactory,
    oidc_provider: str,  # noqa: F811
) -> Iterator[tuple[str, Path, str]]:
    """A class server signing in through the local OpenID provider, one worker at a time: (URL, home, provider)."""
    home = tmp_path_factory.mktemp("owned_runs_home")
    (home / "classroom.toml").write_text(classroom_toml(), encoding="utf-8")
    environment = {"CNNLAB_HOME": str(home), "CNNLAB_MAX_WORKERS": "1", **UNTIL_STOPPED_JOBS}
    with running_app(environment, oidc_secrets(oidc_provider)) as url:
        yield url, home, oidc_provider


# A stand-in worker: a process named like one that heartbeats its run until the run ends, so the
# server's scheduler counts the run as holding a slot for as long as the test needs.
STAND_IN = """
import os, sys, time
from cnnlab.store.run_store import Store
store, run_id = Store(sys.argv[1]), sys.argv[2]
while not store.get_run(run_id).is_ended:
    store.heartbeat(run_id, os.getpid())
    time.sleep(2)
"""


@contextlib.contextmanager
def stand_in_worker(home: Path, run_id: str) -> Iterator[None]:
    """Hold run `run_id`'s slot (it must be running) with a live, heartbeating stand-in worker."""
    process = subprocess.Popen([sys.executable, "-c", STAND_IN, str(home), run_id, "cnnlab-stand-in-worker"])
    Store(home).heartbeat(run_id, process.pid)  # Until its own first heartbeat.
    try:
        yield
    finally:
        process.kill()
        process.wait()


def _queue(store: Store, owner: str, name: str) -> RunRecord:
    return store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=specs.DataSettings(subset=300),
            training_settings=specs.TrainingSettings(epochs=1),
            owner=owner,
            name=name,
        )
    )


def _runs_table_names(page: Page) -> set[str]:
    """The run names in the Runs page's table, from the grid's accessible table (the cells are drawn on a canvas)."""
    page.wait_for_function(f"() => ({ROWS_SCRIPT})().length > 1")
    rows: list[list[str]] = page.evaluate(ROWS_SCRIPT)
    return {cell for row in rows for cell in row if cell in NAMES}


def _open(page: Page, address: str) -> None:
    page.goto(address)
    wait_for_app(page)


def test_students_see_their_own_runs_and_queue_in_fair_turn(
    classroom: tuple[str, Path, str], new_page: Callable[[], Page], page: Page
) -> None:
    url, home, provider = classroom
    store = Store(home)
    for user_id, subject, name in ((ADA, "ada@school.example", "Ada"), (BOB, "bob@school.example", "Bob")):
        known_openid_user(home, provider, subject, user_id, name)
    holder = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(),
            owner="teacher:lee",
            name="holds the slot",
        ),
        # Not queued first: the server's scheduler would claim a queued run while this sets it starting.
        status=Status.STARTING,
    )
    store.set_status(holder.id, Status.RUNNING)
    with stand_in_worker(home, holder.id):
        _queue_and_look(url, provider, new_page(), page, store, holder)


def _queue_and_look(url: str, provider: str, bob: Page, page: Page, store: Store, holder: RunRecord) -> None:
    # Ada queues two runs before Bob queues one: first come, first served would start both of hers first.
    ada_first, ada_second = (
        _queue(store, ADA, "ada first"),
        _queue(store, ADA, "ada second"),
    )
    bob_only = _queue(store, BOB, "bob only")

    sign_in_oidc(page, provider, "ada@school.example", name="Ada", url=url)
    sign_in_oidc(bob, provider, "bob@school.example", name="Bob", url=url)

    _open(page, f"{url}/runs")
    assert _runs_table_names(page) == {"ada first", "ada second"}
    _open(bob, f"{url}/runs")
    assert _runs_table_names(bob) == {"bob only"}

    _open(bob, f"{url}/train?run={ada_first.id}")
    bob.get_by_text(f"Run '{ada_first.id}' {NOT_YOURS}").wait_for()
    assert "ada first" not in bob.get_by_test_id("stMain").inner_text()
    screenshot(bob, "owned_runs_not_yours")

    _open(bob, f"{url}/train?run={bob_only.id}")
    bob.get_by_text("Queued: position 2 in the queue").wait_for()  # Behind Ada's first, ahead of her second.

    # Free the slot: the server starts the first run in fair order. Ending that one at once (as the
    # CLI's kill does) frees the slot again, and the server starts the second: Bob's, not Ada's second.
    store.set_status(holder.id, Status.COMPLETED, reason="The stand-in frees the slot.")
    queued = (ada_first, ada_second, bob_only)
    first = wait_until(lambda: _started(store, queued), "a first queued run to start", 60)
    Scheduler(store, warm=False).kill(first[0])
    both = wait_until(
        lambda: len(_started(store, queued)) == 2 and _started(store, queued), "a second run to start", 60
    )
    assert [store.get_run(run_id).name for run_id in both] == ["ada first", "bob only"]
    assert store.get_run(ada_second.id).status == Status.QUEUED


def _started(store: Store, runs: tuple[RunRecord, ...]) -> list[str]:
    """The ids of the runs that have left the queue, in the order they left it."""
    left = [store.get_run(run.id) for run in runs if store.get_run(run.id).status != Status.QUEUED]
    return [run.id for run in sorted(left, key=lambda run: _claimed_at(store, run.id))]


def _claimed_at(store: Store, run_id: str) -> float:
    """When the run left the queue: the time of its "queued -> starting" event."""
    events = store.events(run_id)
    return float(events[events["message"] == "queued -> starting"]["time"].iloc[0])


def test_another_students_upload_cannot_be_opened_by_link(
    classroom: tuple[str, Path, str], new_page: Callable[[], Page]
) -> None:
    """Bob opens a ?setup= link naming Ada's uploaded zip: refused like another's run, the digits kept,
    and no folder of the server on the page."""
    url, home, provider = classroom
    ada_zip = uploads.folder_of(home, User(ADA, "Ada", Role.STUDENT)) / "pets-0123.zip"
    preset = presets.get("digits_default")
    setup = share.Setup(specs.DataSettings(dataset=str(ada_zip)), preset.spec, specs.TrainingSettings())
    bob = new_page()
    sign_in_oidc(bob, provider, "bob@school.example", name="Bob", url=url)
    _open(bob, f"{url}/data?setup={share.encode(setup)}")
    bob.get_by_text("'pets-0123.zip', which is not one you can open here").wait_for()
    main = bob.get_by_test_id("stMain").inner_text()
    assert str(home) not in main and "uploads" not in main
    # The digits instead: the Images count, read once drawn (the first metric drawn may be another).
    images = bob.get_by_test_id("stMetric").filter(has_text="Images").get_by_test_id("stMetricValue")
    images.wait_for()
    assert images.inner_text() == "1,797"
    screenshot(bob, "upload_link_refused")

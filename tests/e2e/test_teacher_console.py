"""The teacher's console in Chromium: a class of two students (join code) and a teacher on one server.

The teacher makes an exercise link (epochs locked); Ada opens it, finds the epochs locked and starts
a run, tagged with the exercise; Bo starts a run of his own. The teacher's console shows both live
runs without a reload, and the teacher stops Ada's, which ends `stopped`. Real server, real SQLite,
real worker processes (one at a time, so one run is live while the other waits) running the light
job that records batches until it is stopped (`UNTIL_STOPPED_JOBS`): the console reads runs, whatever
trains them. A Keras run stopped from the browser is followed in test_journey.py.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from made_runs import make_run

from cnnlab import share, specs
from cnnlab.classroom import uploads
from cnnlab.classroom.joining import new_user_id
from cnnlab.model import presets
from cnnlab.store import statuses
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
    sign_in_with_code,
)
from tests.e2e.conftest import ROWS_SCRIPT, go_to, screenshot, wait_for_app
from tests.test_hostile_names import hostile_zip
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LIVE = ("queued", "starting", "running")
TEACHER = "tess@school.example"  # named a teacher in classroom.toml; signs in through the OpenID provider


@pytest.fixture(scope="module")
def classroom(
    tmp_path_factory: pytest.TempPathFactory,
    oidc_provider: str,  # noqa: F811
) -> Iterator[tuple[str, Path, str]]:
    """A server where the teacher signs in through the OpenID provider and students join with the class
    code; the digits preset's 40 epochs are allowed, and runs are live until stopped. (URL, home,
    provider)."""
    home = tmp_path_factory.mktemp("teacher_console_home")
    toml = classroom_toml(teachers=(TEACHER,), limits={"max_epochs": "none"})
    (home / "classroom.toml").write_text(toml)
    environment = {"CNNLAB_HOME": str(home), "CNNLAB_MAX_WORKERS": "1", **UNTIL_STOPPED_JOBS}
    with running_app(environment, oidc_secrets(oidc_provider)) as url:
        yield url, home, oidc_provider


def lock(teacher: Page, control_label: str) -> None:
    """Pick `control_label` in the exercise builder's Locked list, and wait until its chip is drawn (the
    choice is the widget's value only then). The pick is made again if its chip does not come: in 2 of
    about 10 full runs of the suite the click on the option was lost (the dropdown open, the server
    busy; the cause was not found), and what this module checks is the console, not the dropdown."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    locked = teacher.get_by_test_id("stMultiSelect").filter(has_text="Locked")
    chip = locked.get_by_text(control_label, exact=True)
    for _ in range(3):
        if not chip.count():
            locked.locator("input").click()
            teacher.get_by_role("option", name=control_label, exact=True).click()
            teacher.keyboard.press("Escape")
            wait_for_app(teacher)
        with contextlib.suppress(PlaywrightTimeoutError):
            chip.wait_for(timeout=10_000)
            wait_for_app(teacher)
            return
    raise AssertionError(f"{control_label!r} was picked three times and never shown as locked")


def start_training(page: Page) -> None:
    page.get_by_role("button", name="Start training").click()
    wait_for_app(page)


def rows_of(page: Page, owner: str) -> list[list[str]]:
    rows: list[list[str]] = page.evaluate(ROWS_SCRIPT)
    return [row for row in rows if row and row[0] == owner]


def test_the_console_shows_the_class_live_and_stops_a_run(
    classroom: tuple[str, Path, str], new_page: Callable[[], Page]
) -> None:
    url, home, provider = classroom
    teacher, ada, bo = new_page(), new_page(), new_page()

    sign_in_oidc(teacher, provider, TEACHER, name="Tess", claims={"email_verified": True}, url=url)
    go_to(teacher, "Teacher")
    teacher.get_by_label("Exercise name", exact=True).fill("Week 3")
    teacher.get_by_label("Exercise name", exact=True).press("Enter")
    wait_for_app(teacher)
    lock(teacher, "Epochs")
    teacher.get_by_role("button", name="Make the link").click()
    wait_for_app(teacher)
    link = teacher.get_by_test_id("stCode").inner_text().strip()
    assert link.startswith(f"{url}/?exercise="), link

    # Ada opens the exercise: the epochs are locked; the learning rate is hers to change.
    sign_in_with_code(ada, url, "Ada")
    ada.goto(link)
    wait_for_app(ada)
    banner = ada.get_by_test_id("stAlert").filter(has_text="Exercise: Week 3")
    assert banner.count() == 1
    assert "locked: Epochs" in banner.inner_text()
    go_to(ada, "Train")
    assert ada.get_by_role("spinbutton", name="Epochs", exact=True).is_disabled()
    assert ada.get_by_role("spinbutton", name="Learning rate", exact=True).is_enabled()
    screenshot(ada, "exercise_locked_epochs")
    start_training(ada)

    sign_in_with_code(bo, url, "Bo")
    go_to(bo, "Train")
    start_training(bo)

    store = Store(home)
    # The click's rerun may not have started when wait_for_app returns: wait for both runs.
    wait_until(lambda: len(store.list_runs()) == 2, "both students' runs to be queued", 30)
    names = store.people.display_names()  # Owners are random user ids; the console shows these names.
    runs = {names[run.owner]: run for run in store.list_runs()}
    assert set(runs) == {"Ada", "Bo"}
    assert runs["Ada"].exercise == "Week 3" and runs["Bo"].exercise is None

    # The teacher's console follows both live runs without a reload.
    teacher.evaluate("() => { window.notReloaded = true; }")
    teacher.wait_for_function(
        f"""() => {{
            const rows = ({ROWS_SCRIPT})().filter(row => row.length);
            const live = owner => rows.some(row => row[0] === owner && {list(LIVE)!r}.includes(row[2]));
            return live("Ada") && live("Bo");
        }}""",
        timeout=60_000,
    )
    wait_for_app(teacher)
    screenshot(teacher, "teacher_console_live")

    teacher.get_by_label("Run", exact=True).click()
    teacher.get_by_role("option", name=re.compile(r"^Ada · ")).click()
    wait_for_app(teacher)
    teacher.get_by_role("button", name="Stop", exact=True).click()
    wait_for_app(teacher)
    ada_run = runs["Ada"].id
    wait_until(lambda: store.get_run(ada_run).status == Status.STOPPED, "Ada's run to stop", 60)
    teacher.wait_for_function(
        f"""() => ({ROWS_SCRIPT})().some(row => row[0] === "Ada" && row[2] === "stopped")""", timeout=60_000
    )
    assert teacher.evaluate("() => window.notReloaded === true"), "the console was reloaded"
    assert store.get_run(runs["Bo"].id).status in {Status(status) for status in LIVE}
    screenshot(teacher, "teacher_console_stopped")
    # Bo's run records until stopped: stopped here, so the module's other tests start with no live run.
    # It waited for the one slot, which Ada's stop freed: a queued run takes no stop request (the store
    # refused it when the test asked before the scheduler had started the run).
    wait_until(lambda: store.get_run(runs["Bo"].id).status in statuses.LIVE, "Bo's run to start", 60)
    store.request_control(runs["Bo"].id, "stop")
    wait_until(lambda: store.get_run(runs["Bo"].id).is_ended, "Bo's run to stop", 60)


def wait_for_status(page: Page, owner: str, status: str) -> None:
    """Wait until the console's table shows `owner`'s row with `status`, and the rerun it causes has ended."""
    page.wait_for_function(
        f"""() => ({ROWS_SCRIPT})().some(row => row[0] === {owner!r} && row[2] === {status!r})""",
        timeout=30_000,
    )
    wait_for_app(page)


def test_the_consoles_actions_hit_the_chosen_run_after_its_status_changed(
    classroom: tuple[str, Path, str], new_page: Callable[[], Page]
) -> None:
    """The issue's lesson: the teacher chooses Alan's run, it is paused, Share shares Alan's (not the
    first run's); it runs again, Stop stops Alan's. Recorded runs, heartbeating as this test's process."""
    url, home, _ = classroom
    store = Store(home)
    # A process named like a worker, alive for the test, stands for the three runs' workers.
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", "cnnlab-stand-in-worker"]
    )
    try:
        console_actions(url, store, new_page(), stand_in.pid)
    finally:
        stand_in.kill()
        stand_in.wait()


def console_actions(url: str, store: Store, teacher: Page, worker_pid: int) -> None:
    runs = {}
    # Alan's is the oldest run: a picker that lost its choice would fall to a newer one.
    for name, status in (("Alan", Status.RUNNING), ("Grace", Status.PAUSED), ("Ada", Status.RUNNING)):
        owner = known_openid_user(store.home, "https://school.example", name.lower(), new_user_id(), name)
        runs[name] = make_run(store, owner=owner, name=f"{name.lower()} net", status=status).id
        store.heartbeat(runs[name], worker_pid)  # A live worker, as far as the server can tell.
    sign_in_with_code(teacher, url, "Tess", role="teacher")
    go_to(teacher, "Teacher")
    teacher.get_by_label("Run", exact=True).click()
    teacher.get_by_role("option", name=re.compile(f"^Alan · alan net · {runs['Alan']}")).click()
    wait_for_app(teacher)
    # The run's live view is a link away, in the table and under the picker.
    assert teacher.locator(f'a[href="{url}/train?run={runs["Alan"]}"]').count() == 1

    store.set_status(runs["Alan"], Status.PAUSED)  # Between choosing and clicking, Alan's run is paused.
    wait_for_status(teacher, "Alan", "paused")
    teacher.get_by_role("button", name="Share with the class").click()
    wait_for_app(teacher)
    wait_until(lambda: store.get_run(runs["Alan"]).shared, "Alan's run to be shared", 30)
    assert not store.get_run(runs["Ada"]).shared and not store.get_run(runs["Grace"]).shared

    store.set_status(runs["Alan"], Status.RUNNING)  # ... and carries on before the teacher clicks Stop.
    wait_for_status(teacher, "Alan", "running")
    screenshot(teacher, "teacher_console_chosen_run")
    teacher.get_by_role("button", name="Stop", exact=True).click()
    wait_for_app(teacher)
    wait_until(lambda: store.pending_control(runs["Alan"]) == "stop", "Alan's run to be asked to stop", 30)
    assert store.pending_control(runs["Ada"]) is None and store.pending_control(runs["Grace"]) is None
    for run_id in runs.values():  # Leave no live run behind for the module's other test.
        store.set_status(run_id, Status.STOPPED)


HOSTILE = "**bold** [link](http://x) ![img](http://127.0.0.1:9/x.png) <b>html</b> $math$ :emoji:"
IMAGE_HOST = "127.0.0.1:9"


def shown_as(text: str) -> str:
    """`text` as a page shows it after `as_text`: a word joiner after each colon that could open a shortcode."""
    return re.sub(r":(?=\S)", ":\u2060", text)


def no_markup_from(page: Page) -> None:
    """The page shows the hostile name as text: no bold, link, image or HTML made of it."""
    made = page.evaluate(
        """() => [...document.querySelectorAll('strong, b, a, img, .katex')]
            .filter(element => ['bold', 'html', 'link', 'math'].includes(element.textContent.trim())
                || (element.src || '').includes('127.0.0.1:9') || (element.href || '').startsWith('http://x'))
            .map(element => element.outerHTML)"""
    )
    assert not made, made


def test_a_hostile_name_is_text_and_fetches_nothing(
    classroom: tuple[str, Path, str], new_page: Callable[[], Page]
) -> None:
    """A student's display name and run name hold markdown and an image link; the teacher's console
    (and its presentation mode), the run's live view and every other page (Data with a zip of hostile
    folder names, Home, Model, Evaluate, Predict, Learn, Runs) show them as text, and the teacher's
    browser never asks for the image."""
    url, home, _ = classroom
    store = Store(home)
    # A school account's name is the token's, unchecked: any text at all.
    grace = known_openid_user(home, "https://school.example", "hostile-grace", new_user_id(), HOSTILE)
    run = make_run(store, owner=grace, name=HOSTILE, status=Status.COMPLETED)
    teacher = new_page()
    requested: list[str] = []
    teacher.on("request", lambda request: requested.append(request.url))
    sign_in_with_code(teacher, url, "Tess", role="teacher")
    go_to(teacher, "Teacher")
    teacher.get_by_label("Run", exact=True).click()
    teacher.get_by_role("option", name=re.compile(re.escape(run.id))).click()
    wait_for_app(teacher)
    screenshot(teacher, "hostile_name_console")
    teacher.get_by_text(shown_as(f"{HOSTILE}'s run"), exact=False).wait_for()
    no_markup_from(teacher)
    screenshot(teacher, "hostile_name_console")
    teacher.get_by_test_id("stSidebar").get_by_text("Presentation mode").click()
    wait_for_app(teacher)
    teacher.get_by_test_id("stTable").first.wait_for()
    no_markup_from(teacher)
    screenshot(teacher, "hostile_name_console_presented")
    teacher.goto(f"{url}/train?run={run.id}")
    wait_for_app(teacher)
    teacher.get_by_text(shown_as(HOSTILE), exact=False).first.wait_for()
    no_markup_from(teacher)
    # Every other page, with the hostile run followed and a zip of hostile folder names as the data.
    archive = hostile_zip(uploads.class_folder(home))
    preset = presets.get("digits_default")
    setup = share.Setup(specs.DataSettings(dataset=str(archive)), preset.spec, specs.TrainingSettings())
    teacher.goto(f"{url}/data?setup={share.encode(setup)}&run={run.id}")
    wait_for_app(teacher)
    # The skipped file's name closes a code fence; the samples are titled by the hostile folder names.
    teacher.get_by_text("Some files were skipped.").wait_for()
    no_markup_from(teacher)
    screenshot(teacher, "hostile_names_data")
    for link in ("Home", "Model", "Evaluate", "Predict", "Learn"):
        go_to(teacher, link)
        no_markup_from(teacher)
    go_to(teacher, "Runs")
    field = teacher.get_by_test_id("stMultiSelect").locator("input")
    field.click()
    field.fill(run.id[-4:])
    # A click on the option that names the run (its id's last four characters): an Enter now and then
    # picked nothing.
    teacher.get_by_role("option", name=re.compile(re.escape(f"({run.id[-4:]}, "))).click()
    wait_for_app(teacher)
    teacher.keyboard.press("Escape")
    screenshot(teacher, "hostile_names_runs")
    teacher.get_by_test_id("stHeading").filter(has_text=shown_as(HOSTILE)).first.wait_for()
    no_markup_from(teacher)
    screenshot(teacher, "hostile_names_runs")
    assert not [address for address in requested if IMAGE_HOST in address], requested

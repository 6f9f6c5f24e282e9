"""A live run followed through its stream in Chromium: the curves grow while the page script does
not rerun, a second page draws the same points, a Stop reaches every viewer, a stream that does not
connect falls back to polling, and a student's token does not open another student's run.

The run trains in a real worker process running the light job of tests/fake_jobs.py (a batch every
20 ms, ten to an epoch, no TensorFlow), so each test takes seconds.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from cnnlab.classroom.stream_tokens import mint_stream_token
from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.store.people import StoredUser
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.e2e.conftest import screenshot, wait_for_app
from tests.made_runs import make_run
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import APIResponse, Locator, Page, Route

pytestmark = [pytest.mark.e2e, pytest.mark.light_jobs]  # The server's own warm worker imports no TensorFlow.

# Records each status sentence the stream's element (`.cnnlab-info`) says.
RECORD_SAID = """() => {
    window.cnnlabSaid = [];
    new MutationObserver(() => {
        for (const element of document.querySelectorAll('.cnnlab-info')) {
            if (window.cnnlabSaid[window.cnnlabSaid.length - 1] !== element.textContent) {
                window.cnnlabSaid.push(element.textContent);
            }
        }
    }).observe(document.body, {childList: true, characterData: true, subtree: true});
}"""


class ScriptRuns:
    """Counts a page's script runs (fragment runs included) from the server's own word: the
    `script_finished` message that ends each run on the page's websocket. (The app's script-state
    attribute misses a short run: the browser may draw its start and its end in one frame.)"""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.finished = 0
        page.on("websocket", lambda socket: socket.on("framereceived", self._frame))

    def _frame(self, payload: str | bytes) -> None:
        message = ForwardMsg()
        if isinstance(payload, bytes):
            message.ParseFromString(payload)
            self.finished += message.WhichOneof("type") == "script_finished"

    def since(self, mark: int) -> int:
        """The runs that ended since `mark` (an earlier `finished`), once the page's script is idle."""
        wait_for_app(self.page)
        return self.finished - mark


# The values of one trace of the Loss chart (0: the batches, each loss 1 / (step + 1); 1: the epochs),
# from its full data (where plotly has decoded the arrays a Streamlit chart sends as base64).
LOSS_POINTS = """trace => {
    const chart = [...document.querySelectorAll('.js-plotly-plot')].find(element =>
        element._fullLayout && element._fullLayout.title && /Loss/.test(element._fullLayout.title.text));
    return chart && chart._fullData.length > trace ? [...chart._fullData[trace].y] : [];
}"""
BATCHES, EPOCHS = 0, 1


@contextlib.contextmanager
def training(home: Path, epochs: int = 400) -> Iterator[str]:
    """A run training in a light worker process for the block; its id."""
    run = make_run(Store(home), epochs=epochs, name="streamed run", status=Status.STARTING)
    worker = LocalProcessExecutor(home, entry="tests.fake_jobs:counting_job", threads=1, warm=False)
    worker.submit(run.id)
    try:
        yield run.id
    finally:
        worker.cancel(run.id)


def open_live_view(page: Page, app_url: str, run_id: str) -> None:
    page.goto(f"{app_url}/train?run={run_id}")
    page.get_by_text(re.compile(r"^Training: epoch \d+ of")).first.wait_for(timeout=90_000)
    wait_for_app(page)


def expect_enabled(button: Locator) -> None:
    """Wait until `button` is enabled (the stream's status allows it)."""
    button.and_(button.page.locator(":enabled")).wait_for(timeout=20_000)


def loss_points(page: Page, more_than: int = 0, trace: int = BATCHES) -> list[float]:
    """The values of a trace of the Loss chart, once it holds more than `more_than`."""
    page.wait_for_function(f"() => ({LOSS_POINTS})({trace}).length > {more_than}", timeout=60_000)
    return page.evaluate(LOSS_POINTS, trace)


def test_curves_grow_without_reruns_and_a_stop_reaches_every_viewer(
    app_url: str, app_home: Path, page: Page, new_page: Callable[[], Page]
) -> None:
    runs = ScriptRuns(page)
    with training(app_home) as run_id:
        open_live_view(page, app_url, run_id)
        mark = runs.finished
        first = loss_points(page)
        grown = loss_points(page, len(first) + 5)
        # The points come from the stream: the page script did not run once meanwhile.
        assert runs.since(mark) == 0
        assert grown[: len(first)] == first
        # A second viewer draws the same points: every epoch the first had, and then what both receive
        # (the batches of its history are thinned to a thousand, as the app's curves are).
        second = new_page()
        second_runs = ScriptRuns(second)
        open_live_view(second, app_url, run_id)
        seen = loss_points(page, trace=EPOCHS)
        assert loss_points(second, len(seen) - 1, EPOCHS)[: len(seen)] == seen
        screenshot(page, "live_stream_curves")
        # A Stop in one page: both say it, without a timer, through the stream.
        marks = [counter.finished for counter in (runs, second_runs)]
        for viewer in (page, second):
            viewer.evaluate(RECORD_SAID)
        control(page, "Stop").click()
        for viewer in (page, second):
            viewer.get_by_text(re.compile(r"Stopped after epoch \d+")).first.wait_for(timeout=20_000)
            # Continue enabled once the page has reran for the run's end: its one script run.
            expect_enabled(viewer.get_by_role("button", name="Continue"))
        # The stopped run was said by the stream's element (gone once the page has drawn the ended run);
        # each page ran its script once, for the ended run (Continue and Fork).
        for viewer in (page, second):
            said_by_the_stream = viewer.evaluate("window.cnnlabSaid")
            assert any(
                re.match(r"Stopped after epoch \d+: Stop was pressed", text) for text in said_by_the_stream
            )
        assert [counter.since(mark) for counter, mark in zip((runs, second_runs), marks, strict=True)] == [
            1,
            1,
        ]
        screenshot(second, "live_stream_stopped_in_another_page")


CONTROL_ROUTE = "**/cnnlab/stream/runs/*/control"  # where the live view's buttons send their requests


def control(page: Page, name: str) -> Locator:
    """The live view's button `name` (Stop, Pause, Resume), drawn by the stream's component."""
    return page.get_by_test_id("stMainBlockContainer").get_by_role("button", name=name, exact=True)


def card_says(page: Page, word: str) -> None:
    """Wait until the sidebar card of the followed run says its status is `word`."""
    card = page.get_by_test_id("stSidebar").locator(".st-key-followed_run_card")
    card.get_by_text(word, exact=True).wait_for(timeout=20_000)


def said(page: Page, pattern: str) -> None:
    """Wait until the live view's status sentence says `pattern` (a regular expression)."""
    page.locator(".cnnlab-info").filter(has_text=re.compile(pattern)).first.wait_for(timeout=20_000)


def test_a_pause_and_a_resume_reach_every_viewer_without_a_script_run(
    app_url: str, app_home: Path, page: Page, new_page: Callable[[], Page]
) -> None:
    with training(app_home) as run_id:
        second = new_page()
        counters = [ScriptRuns(viewer) for viewer in (page, second)]
        for viewer in (page, second):
            open_live_view(viewer, app_url, run_id)
        # As in the Stop test, the run trains in both pages first: a page drawn while the run was still
        # starting reruns once when the stream says it trains, and a click may not land during that.
        for viewer in (page, second):
            loss_points(viewer, len(loss_points(viewer)))
            wait_for_app(viewer)
        marks = [counter.finished for counter in counters]
        # Pause is drawn disabled until the stream says the run trains: a click before takes no effect.
        expect_enabled(control(page, "Pause"))
        # The click's answer is held back until the run has paused and resumed again, as a busy server
        # may send it: coming after newer news from the stream, it must not undo it. Before, it did, and
        # the page said "Pausing…" (or "Paused") for ever with Resume off. (Whether the answer itself says
        # "pausing" or already "paused" depends on how fast the worker is; both are older than the Resume.)
        held: list[tuple[Route, APIResponse]] = []
        page.route(CONTROL_ROUTE, lambda route: held.append((route, route.fetch())))
        control(page, "Pause").click()
        for viewer in (page, second):
            said(viewer, r"^Paused after epoch \d+; resume to carry on")
            # The sidebar card of the followed run (the one the link opened) says it too, without a rerun.
            card_says(viewer, "Paused")
        # (The first page's buttons are off while its request waits for the answer.)
        expect_enabled(control(second, "Resume"))
        # Playwright calls the route's handler only while the test waits in one of its calls.
        wait_until(lambda: page.wait_for_timeout(20) or held, "the server's answer to the Pause request", 20)
        assert len(held) == 1, held
        route, answer = held[0]
        assert answer.json()["status"] in ("running", "paused") and answer.json()["active"], answer.json()
        control(second, "Resume").click()
        for viewer in (page, second):
            said(viewer, r"^Training: epoch \d+ of")
            card_says(viewer, "Running")
        expect_enabled(control(second, "Pause"))
        route.fulfill(response=answer)
        page.unroute(CONTROL_ROUTE)
        # The late answer changed nothing: once the browser has read it, the page still says the run
        # trains, and Pause is on.
        page.wait_for_timeout(500)
        assert re.match(r"Training: epoch \d+ of", page.locator(".cnnlab-info").first.inner_text())
        expect_enabled(control(page, "Pause"))
        # The page script ran in neither page: the status and the buttons came from the stream.
        assert [counter.since(mark) for counter, mark in zip(counters, marks, strict=True)] == [0, 0]
        # And the run trains again: new batches are drawn after the resume.
        loss_points(second, len(loss_points(second)))


def test_a_stream_that_does_not_connect_falls_back_to_polling(
    app_url: str, app_home: Path, page: Page
) -> None:
    # A proxy that buffers the stream: the requests get no answer at all.
    page.route("**/cnnlab/stream/**", lambda route: None)
    with training(app_home) as run_id:
        open_live_view(page, app_url, run_id)
        page.get_by_text("The live stream did not connect").wait_for(timeout=30_000)
        # Polled now: the curves (drawn by the page script) still grow.
        loss_points(page, len(loss_points(page)))
        screenshot(page, "live_stream_fallback")


def test_a_student_token_does_not_open_another_students_run(app_url: str, app_home: Path, page: Page) -> None:
    store = Store(app_home)
    for name in ("Ada", "Grace"):
        store.people.add_user(
            StoredUser(f"user-{name}", name, name.casefold(), "student", None, None, time.time())
        )
    adas = make_run(store, owner="user-Ada", name="Ada's", status=Status.STARTING)
    graces = make_run(store, owner="user-Grace", name="Grace's", status=Status.STARTING)
    page.goto(f"{app_url}/_stcore/health")

    def opened(run_id: str, token: str) -> str:
        """What the browser's EventSource got: the first event's name, or "refused"."""
        address = f"/cnnlab/stream/runs/{run_id}?token={token}"
        return page.evaluate(
            """address => new Promise(resolve => {
                const source = new EventSource(address);
                source.addEventListener('history', () => { source.close(); resolve('history'); });
                source.onerror = () => { source.close(); resolve('refused'); };
            })""",
            address,
        )

    assert opened(adas.id, mint_stream_token(app_home, "user-Ada", adas.id)) == "history"
    assert opened(graces.id, mint_stream_token(app_home, "user-Ada", graces.id)) == "refused"
    status = page.evaluate(
        "address => fetch(address).then(response => response.status)",
        f"/cnnlab/stream/runs/{graces.id}?token={mint_stream_token(app_home, 'user-Ada', graces.id)}",
    )
    assert status == 403


# The kernels' figure the live component drew: its epoch and its traces (as JSON, to compare).
KERNELS_DRAWN = """() => {
    const chart = document.querySelector('.cnnlab-live[data-mode="figure"] .cnnlab-chart[data-epoch]');
    return chart ? [Number(chart.dataset.epoch), JSON.stringify(chart.data)] : null;
}"""


def test_the_filters_tab_follows_a_new_epoch_without_a_rerun(
    app_url: str, app_home: Path, page: Page
) -> None:
    store = Store(app_home)
    kernel = np.linspace(-1, 1, 3 * 3 * 1 * 4, dtype=np.float32).reshape(3, 3, 1, 4)
    runs = ScriptRuns(page)
    with training(app_home) as run_id:
        # Two epochs' kernels, as a run records them (the light job records none).
        for epoch in (1, 2):
            store.write_snapshot(run_id, epoch, "kernels", {"conv2d": kernel * epoch})
        open_live_view(page, app_url, run_id)
        page.get_by_role("tab", name="Filters and feature maps").click()
        wait_for_app(page)
        page.wait_for_function(f"() => ({KERNELS_DRAWN})() && ({KERNELS_DRAWN})()[0] === 2", timeout=30_000)
        second = page.evaluate(KERNELS_DRAWN)
        mark = runs.finished
        store.write_snapshot(run_id, 3, "kernels", {"conv2d": -kernel})
        # The stream announces epoch 3; the browser fetches its figure by URL and draws it.
        page.wait_for_function(f"() => ({KERNELS_DRAWN})()[0] === 3", timeout=30_000)
        page.get_by_text("Epoch 3 (latest)").wait_for()
        assert page.evaluate(KERNELS_DRAWN)[1] != second[1]
        assert runs.since(mark) == 0
        screenshot(page, "live_stream_kernels_next_epoch")

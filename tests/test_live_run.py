"""The Train page's live view costs little: polling per status, Stop at once, one cache for all sessions."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.classroom.stream_tokens import read_control_token
from cnnlab.runs.queue.job import Control
from cnnlab.store import statuses
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.pages.train import live_controls, live_run, run_cache, run_status
from tests.app_pages import no_problems, open_page, read_back, stream_elements
from tests.test_pages import new_run
from tests.waiting import wait_until

pytestmark = pytest.mark.usefixtures("cnnlab_home")


def test_a_run_is_polled_every_second_only_while_it_trains() -> None:
    assert live_run.poll_seconds(Status.RUNNING, None) == live_run.POLL_SECONDS == 1.0
    assert live_run.poll_seconds(Status.STARTING, None) == live_run.POLL_SECONDS
    assert live_run.poll_seconds(Status.RUNNING, "stop") == live_run.POLL_SECONDS
    # A queued or paused run changes rarely: it is checked every few seconds.
    assert live_run.poll_seconds(Status.QUEUED, None) == live_run.QUEUED_POLL_SECONDS > live_run.POLL_SECONDS
    assert live_run.poll_seconds(Status.PAUSED, None) == live_run.PAUSED_POLL_SECONDS > live_run.POLL_SECONDS
    # Until a request to a paused run is answered, it is followed closely again.
    assert live_run.poll_seconds(Status.PAUSED, "resume") == live_run.POLL_SECONDS
    assert live_run.poll_seconds(Status.PAUSED, "stop") == live_run.POLL_SECONDS
    # An ended run is not polled at all.
    for status in statuses.ENDED:
        assert live_run.poll_seconds(status, None) is None
    for status in statuses.ACTIVE:
        assert live_run.poll_seconds(status, None) is not None


def running(store: Store, name: str = "live run") -> str:
    """A run its (absent) worker has started: it takes control requests as a live run does."""
    run = new_run(store, name)
    store.set_status(run.id, Status.STARTING)
    store.set_status(run.id, Status.RUNNING)
    return run.id


def polled(run_id: str) -> AppTest:
    """The Train page following run `run_id` by polling, as where its stream did not connect."""
    app = open_page("train", run_id)
    app.session_state[live_run.FALLBACK] = {run_id}
    return app.run()


def test_stop_is_written_and_shown_in_the_rerun_of_the_click(home_store: Store) -> None:
    run_id = running(home_store)
    app = polled(run_id)
    no_problems(app)
    stop = app.button(key="stop_run")
    assert stop.label == "Stop" and not stop.disabled
    stop.click().run()
    no_problems(app)
    # The click's callback wrote the request before the view was drawn again, which shows it.
    assert home_store.pending_control(run_id) == "stop"
    assert app.button(key="stop_run").label == "Stopping…"
    assert app.button(key="stop_run").disabled
    assert app.button(key="pause_run").disabled
    assert any(element.value.startswith("Stopping:") for element in app.info)
    # The worker answers: the next redraw says the run stopped.
    home_store.set_status(run_id, Status.STOPPED, reason="Stopped by the user.")
    app.run()
    assert any("Stopped after epoch" in element.value for element in app.info)


def test_pause_is_written_in_its_click(home_store: Store) -> None:
    run_id = running(home_store)
    app = polled(run_id)
    app.button(key="pause_run").click().run()
    no_problems(app)
    assert home_store.pending_control(run_id) == "pause"
    assert app.button(key="control_pending").label == "Pausing…"


def test_sessions_following_one_run_share_its_frames_until_it_is_the_least_recently_followed(
    home_store: Store,
) -> None:
    first, second = (home_store.get_run(running(home_store, name)) for name in ("first", "second"))
    home = home_store.home
    live = run_cache.live(first, home)
    assert run_cache.live(first, home) is live  # every session gets the same copy
    second_live = run_cache.live(second, home)
    assert second_live is not live
    # Fill the cache with other runs, follow the first again, then one run more: the second, now the
    # least recently followed, is let go and the first is kept.
    others = [dataclasses.replace(first, id=f"other-{index}") for index in range(run_cache.MAX_RUNS - 1)]
    for other in others[:-1]:
        run_cache.live(other, home)
    assert run_cache.live(first, home) is live
    run_cache.live(others[-1], home)
    assert run_cache.live(first, home) is live
    assert run_cache.live(second, home) is not second_live


def test_a_crowd_following_a_run_refreshes_less_often() -> None:
    running = Status.RUNNING
    assert live_run.poll_seconds(running, None, viewers=4) == live_run.POLL_SECONDS
    assert live_run.poll_seconds(running, None, viewers=5) == 2.0
    assert live_run.poll_seconds(running, None, viewers=30) == 3.0
    # Back to shorter intervals only once the crowd has clearly thinned, not at one viewer less.
    assert live_run.poll_seconds(running, None, viewers=19, current=3.0) == 3.0
    assert live_run.poll_seconds(running, None, viewers=10, current=3.0) == 2.0
    assert live_run.poll_seconds(running, None, viewers=4, current=2.0) == 2.0
    assert live_run.poll_seconds(running, None, viewers=1, current=2.0) == live_run.POLL_SECONDS
    # A queued or paused run is checked as rarely as before, however many follow it.
    assert live_run.poll_seconds(Status.QUEUED, None, viewers=30) == live_run.QUEUED_POLL_SECONDS
    assert live_run.poll_seconds(Status.PAUSED, None, viewers=30) == live_run.PAUSED_POLL_SECONDS


def test_the_cache_counts_the_sessions_that_follow_a_run() -> None:
    viewers = run_cache.Viewers(viewer_seconds=10.0)
    for session in ("ada", "bo", "cy"):
        viewers.note("run-a", session, now=100.0)
    assert viewers.note("run-a", "ada", now=105.0) == 3  # a session counts once, however often
    assert viewers.note("run-b", "dee", now=105.0) == 1  # per run
    # Sessions that stopped reading the run (closed the tab, followed another) stop counting.
    assert viewers.note("run-a", "ada", now=112.0) == 1
    assert viewers.note("run-b", "ada", now=130.0) == 1  # and a run nobody read lately starts again


def test_the_controls_are_drawn_apart_from_the_refresh_and_know_what_they_show(home_store: Store) -> None:
    run_id = running(home_store)
    app = open_page("train", run_id).run()
    no_problems(app)
    # What the live view compares on each tick, to redraw the controls when the run changed.
    drawn = app.session_state[live_controls.DRAWN]
    assert drawn == live_controls.controls_state(home_store.get_run(run_id)) == (run_id, "running", None)
    home_store.request_control(run_id, "stop")  # another session (the teacher) asks it to stop
    assert live_controls.controls_state(home_store.get_run(run_id)) != drawn


def test_resume_is_said_in_the_click_and_the_answer_shows_the_run_training(home_store: Store) -> None:
    """The click's own rerun says "Resuming" (it was the stale "Paused after epoch 2" until a timer
    ran, 5 s apart while paused); the worker's real `Control` answers, and the page says it trains."""
    run_id = running(home_store)
    for epoch in (1, 2):
        home_store.add_epoch_metrics(run_id, {"epoch": epoch, "loss": 1 / epoch, "epoch_seconds": 1.0})
    control = Control(home_store, run_id, poll_seconds=0.0)
    home_store.request_control(run_id, "pause")
    worker = threading.Thread(target=control.should_stop, daemon=True)  # Blocks while paused, as a job does.
    worker.start()
    wait_until(lambda: home_store.get_run(run_id).status == Status.PAUSED, "the run to be paused")
    app = polled(run_id)
    no_problems(app)
    said = [element.value for element in app.info]
    assert any(text.startswith("Paused after epoch 2") for text in said), said
    # Said once, by the controls: the click reruns them, so their sentence is the one that changes.
    assert sum(text.startswith("Paused") for text in said) == 1
    paused = home_store.get_run(run_id)
    assert run_status.said_by_controls(paused)
    resuming = dataclasses.replace(paused, control="resume")
    assert run_status.status_message(resuming, 8).startswith("Resuming: training carries on with epoch 3")
    app.button(key="resume_run").click().run()
    no_problems(app)
    worker.join(timeout=30)
    assert not worker.is_alive() and home_store.get_run(run_id).status == Status.RUNNING
    # Training again (from epoch 3 on), said at the page's next drawing.
    app.run()
    said = [element.value for element in app.info]
    assert any(text.startswith("Training: epoch 3 of") for text in said), said
    assert not any(text.startswith(("Paused", "Resuming")) for text in said), said
    assert not app.button(key="pause_run").disabled


def test_a_streamed_run_has_its_status_and_requests_drawn_by_the_browser(home_store: Store) -> None:
    """Where the stream connects, Stop and Pause or Resume are the browser's (sent to the control route
    with a control token for this user and run) and the status sentence is kept current from the
    stream in the page's own words: a pause or a resume reruns no page script."""
    run_id = running(home_store)
    home_store.add_epoch_metrics(run_id, {"epoch": 1, "loss": 1.0})
    home_store.set_status(run_id, Status.PAUSED)
    app = open_page("train", run_id).run()
    no_problems(app)
    elements = stream_elements(app)
    buttons, watch = elements["controls"], elements["watch"]
    assert not [button for button in app.button if button.key in ("stop_run", "pause_run", "resume_run")]
    assert not [element.value for element in app.info if element.value.startswith("Paused")]
    assert watch["sentence"].startswith("Paused after epoch 1; resume to carry on")
    assert watch["sentences"] == run_status.SENTENCES and watch["teacher"] == "your teacher"
    assert (buttons["status"]["status"], buttons["status"]["control"]) == ("paused", None)
    assert buttons["control"] == f"/cnnlab/stream/runs/{run_id}/control"
    grant = read_control_token(home_store.home, buttons["token"])
    assert (grant.user_id, grant.run_id) == ("local", run_id)
    # The words the browser fills in are the page's: the same sentence for the same status.
    assert run_status.SENTENCES["paused"].format(last_epoch=1) == watch["sentence"]
    # No status icon in the title: the page is not rerun when the run resumes, so it would go stale.
    icons = [run_status.STATUS_ICONS[status] for status in (Status.RUNNING, Status.PAUSED)]
    assert not [header.value for header in app.subheader if any(icon in header.value for icon in icons)]


def test_a_pruned_trial_says_so_on_the_train_page_with_its_sweep_s_reason(home_store: Store) -> None:
    run_id = running(home_store)
    for epoch in (1, 2):
        home_store.add_epoch_metrics(run_id, {"epoch": epoch, "loss": 1 / epoch, "val_accuracy": 0.1})
    reason = (
        "Pruned at epoch 2: below the median of earlier trials (80.0%), with a validation accuracy of 10.0%."
    )
    home_store.request_prune(run_id, reason)
    assert run_status.status_message(home_store.get_run(run_id), 6).startswith("Pruning: its sweep stops it")
    home_store.set_status(run_id, Status.PRUNED, reason=home_store.prune_reason(run_id))
    app = open_page("train", run_id).run()
    no_problems(app)
    said = [read_back(element.value) for element in app.info]
    assert (
        f"{reason} Its sweep stopped it as losing and gave its worker to the next setting; continue it to "
        "train it to the end." in said
    ), said

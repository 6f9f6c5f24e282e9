"""Live pages that stay live and calm, and names and numbers that agree (AppTest and functions).

AppTest does not fire `run_every` timers: which fragments poll is checked by recording the
`run_every` each one is created with, and the timers themselves in tests/e2e/test_live_tables.py.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import streamlit
from made_runs import make_run
from streamlit.testing.v1 import AppTest

from cnnlab.classroom.stream_tokens import read_stream_token
from cnnlab.figures import training as training_figures
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store import names
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.trained import exports
from cnnlab.ui.pages.train import live_run
from cnnlab.ui.stream import live_chart
from cnnlab.ui.widgets import run_table, tables
from tests.app_pages import column_formats, no_problems, open_page, stream_elements

pytestmark = pytest.mark.usefixtures("cnnlab_home")
TIMEOUT = 60


def new_run(store: Store, name: str = "live run", epochs: int = 10) -> RunRecord:
    return make_run(store, epochs=epochs, name=name)


def running_run(store: Store, epochs_done: int = 2, name: str = "live run") -> str:
    """A run running with `epochs_done` epochs recorded, each taking 3 s."""
    run = new_run(store, name)
    store.set_status(run.id, Status.STARTING)
    store.set_status(run.id, Status.RUNNING)
    for epoch in range(1, epochs_done + 1):
        store.add_epoch_metrics(
            run.id,
            {"epoch": epoch, "loss": 1 / epoch, "accuracy": 0.5, "learning_rate": 0.001, "epoch_seconds": 3},
        )
    return run.id


def train_page(run_id: str) -> AppTest:
    return open_page("train", run_id, TIMEOUT).run()


def polled_train_page(run_id: str) -> AppTest:
    """The Train page following `run_id` as after its stream did not connect: the polling view,
    whose progress bar the page script draws (the stream's is drawn in the browser)."""
    app = open_page("train", run_id, TIMEOUT)
    app.session_state[live_run.FALLBACK] = {run_id}
    return app.run()


def every_text(app: AppTest) -> list[str]:
    """The text of every message, caption, markdown and header on the page."""
    kinds = ("info", "warning", "error", "success", "caption", "markdown", "subheader")
    return [str(element.value) for kind in kinds for element in app.get(kind)]


@pytest.fixture
def fragment_timers(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The `run_every` of every fragment created while the test runs the app, in order."""
    created: list[float | None] = []
    real = streamlit.fragment

    def recording(function: Callable[..., Any] | None = None, **options: Any) -> Any:
        created.append(options.get("run_every"))
        return real(function, **options) if function is not None else real(**options)

    monkeypatch.setattr(streamlit, "fragment", recording)
    return created


# The Runs table and Home's recent runs: live while a run is active, still otherwise.


def test_polling_follows_whether_a_listed_run_can_still_change(home_store: Store) -> None:
    run = new_run(home_store)
    assert run_table.should_poll([run])  # Queued: it will start.
    home_store.set_status(run.id, Status.STARTING)
    assert run_table.should_poll([home_store.get_run(run.id)])
    home_store.set_status(run.id, Status.STOPPED, reason="Stopped by the user.")
    assert not run_table.should_poll([home_store.get_run(run.id)])
    assert not run_table.should_poll([])


@pytest.mark.parametrize("page", ["runs", "home"])
def test_the_runs_table_polls_only_while_a_run_is_active(
    page: str, home_store: Store, fragment_timers: list[float | None]
) -> None:
    run = new_run(home_store, "starting run")
    home_store.set_status(run.id, Status.STARTING)
    app = open_page(page, timeout=TIMEOUT).run()
    no_problems(app)
    # Followed through the class stream, which reruns the table on its news: no timer.
    assert fragment_timers == [None]
    assert set(stream_elements(app)["class"]["drawn"]) == {run.id}
    # Where the stream does not connect, the table polls.
    app.session_state[live_chart.CLASS_FALLBACK] = {"runs_table", "recent_runs"}
    fragment_timers.clear()
    app.run()
    assert fragment_timers == [run_table.POLL_SECONDS]
    table = app.dataframe[0].value
    assert (table.loc[0, "status"], table.loc[0, "epochs"]) == ("starting", 0)
    home_store.set_status(run.id, Status.RUNNING)
    home_store.add_epoch_metrics(run.id, {"epoch": 1, "loss": 0.5})
    home_store.set_status(run.id, Status.COMPLETED)
    fragment_timers.clear()
    app.run()
    no_problems(app)
    assert fragment_timers == [None]  # Every run has ended: no timer.
    table = app.dataframe[0].value
    assert (table.loc[0, "status"], table.loc[0, "epochs"]) == ("completed", 1)


def test_a_chosen_row_names_its_run() -> None:
    table = pd.DataFrame({"id": ["first", "second"], "name": ["a", "b"]})
    assert run_table.chosen_run_id(table, [1]) == "second"
    assert run_table.chosen_run_id(table, []) is None
    assert run_table.chosen_run_id(table, [5]) is None


# The Train page's live view.


def test_a_live_run_is_followed_through_its_stream_not_a_timer(
    home_store: Store, fragment_timers: list[float | None]
) -> None:
    run_id = running_run(home_store)
    app = train_page(run_id)
    no_problems(app)
    # No part of the page reruns on a timer: not the live view, not the sidebar's card of the run.
    assert fragment_timers and not any(fragment_timers)
    elements = stream_elements(app)
    watch, curves = elements["watch"], elements["curves"]
    assert watch["sentence"] == "Training: epoch 3 of 10."
    assert watch["drawn"] == {"status": "running", "control": None}
    assert elements["news"]["drawn"] == {"diagnoses": 0, "snapshot": None}
    # The sidebar card's status word follows the same stream (a Pause reruns no page).
    assert elements["word"]["word"] == "Running"
    # Each opens the run's stream with a token for this session's user and this run.
    for data in (watch, curves, elements["news"], elements["word"]):
        address, _, token = data["stream"].partition("?token=")
        assert address == f"/cnnlab/stream/runs/{run_id}"
        grant = read_stream_token(home_store.home, urllib.parse.unquote(token))
        assert (grant.user_id, grant.run_id) == ("local", run_id)
    # The browser draws the curves from the app's own figures: titles, traces and colours.
    titles = {name: figure["layout"]["title"]["text"] for name, figure in curves["figures"].items()}
    assert titles == {"loss": "Loss", "accuracy": "Accuracy", "learning_rate": "Learning rate"}
    names = [trace["name"] for trace in curves["figures"]["loss"]["data"]]
    assert names == ["train loss (batches)", "train loss", "validation loss"]
    # Once the run ends, the page script draws it as it always did: nothing is left to follow.
    home_store.set_status(run_id, Status.COMPLETED)
    app.run()
    assert not stream_elements(app) and len(app.get("plotly_chart")) == 3


def test_after_pause_only_pausing_is_shown_and_no_time_runs_down(home_store: Store) -> None:
    run_id = running_run(home_store)
    app = polled_train_page(run_id)
    assert "left" in app.get("progress")[0].text  # Running: an estimate of the time left.
    assert not app.button(key="pause_run").disabled
    home_store.request_control(run_id, "pause")
    app = polled_train_page(run_id)
    no_problems(app)
    keys = {button.key for button in app.button}
    assert "pause_run" not in keys and "resume_run" not in keys
    pending = app.button(key="control_pending")
    assert (pending.label, pending.disabled) == ("Pausing…", True)
    assert "left" not in app.get("progress")[0].text


def test_epochs_recorded_without_their_duration_give_no_estimate_and_no_traceback(home_store: Store) -> None:
    # A run whose epochs were recorded without `epoch_seconds` (the column is then NaN): no estimate
    # from the untimed epochs, and the live view draws (it raised "cannot convert float NaN").
    run = new_run(home_store, "untimed run")
    home_store.set_status(run.id, Status.STARTING)
    home_store.set_status(run.id, Status.RUNNING)
    home_store.add_epoch_metrics(run.id, {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "epoch_seconds": 4})
    home_store.add_epoch_metrics(run.id, {"epoch": 2, "loss": 0.5, "accuracy": 0.6})
    app = polled_train_page(run.id)
    no_problems(app)
    assert "about 0:" in app.get("progress")[0].text  # From the one timed epoch: 4 s per epoch.
    untimed = new_run(home_store, "never timed")
    home_store.set_status(untimed.id, Status.STARTING)
    home_store.set_status(untimed.id, Status.RUNNING)
    home_store.add_epoch_metrics(untimed.id, {"epoch": 1, "loss": 1.0, "accuracy": 0.5})
    app = polled_train_page(untimed.id)
    no_problems(app)
    assert "left" not in app.get("progress")[0].text


def test_a_paused_run_shows_resume_alone_and_no_estimate(home_store: Store) -> None:
    run_id = running_run(home_store)
    home_store.set_status(run_id, Status.PAUSED)
    app = polled_train_page(run_id)
    no_problems(app)
    keys = [button.key for button in app.button]
    assert "resume_run" in keys and "pause_run" not in keys and "control_pending" not in keys
    progress = app.get("progress")[0].text
    assert progress == "2 of 10 epochs — paused", progress


def test_the_event_log_shows_local_times(home_store: Store) -> None:
    run_id = running_run(home_store)
    app = open_page("train", run_id, TIMEOUT)
    app.session_state["live_tabs"] = "Event log"  # Only the open tab is drawn.
    app.run()
    no_problems(app)
    frame = next(frame for frame in app.dataframe if "message" in frame.value.columns)
    log = frame.value
    stored = home_store.events(run_id)
    expected = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) for seconds in stored["time"]]
    # Times are datetimes of this server's zone, written to the second by the browser.
    assert [moment.strftime("%Y-%m-%d %H:%M:%S") for moment in log["time"]] == expected
    assert column_formats(frame)["time"] == "YYYY-MM-DD HH:mm:ss"
    assert list(log["message"]) == list(stored["message"])


def test_the_event_log_says_training_started_and_keeps_process_ids_one_click_away(home_store: Store) -> None:
    run_id = running_run(home_store)
    home_store.log_event(
        run_id, "worker process 8899 took the run (warm: the job was loaded before)", "debug"
    )
    home_store.log_event(run_id, "Training started")
    app = open_page("train", run_id, TIMEOUT)
    app.session_state["live_tabs"] = "Event log"
    app.run()
    no_problems(app)
    # The learner's events first, the technical ones in an expander below them.
    log, technical = (frame.value for frame in app.dataframe if "message" in frame.value.columns)
    assert "Training started" in list(log["message"])
    assert not [message for message in log["message"] if "worker process" in message]
    assert "Technical details (processes, warm starts)" in [expander.label for expander in app.expander]
    assert list(technical["message"]) == [
        "worker process 8899 took the run (warm: the job was loaded before)"
    ]


def test_a_failed_run_without_metrics_shows_a_message_not_empty_charts(home_store: Store) -> None:
    run = new_run(home_store, "broken run")
    home_store.set_status(run.id, Status.FAILED, reason="The dataset could not be read.")
    app = train_page(run.id)
    assert not app.exception
    assert not app.get("plotly_chart")
    assert any("recorded no metrics" in element.value for element in app.info)


def test_a_run_stopped_in_the_queue_says_so_once(home_store: Store) -> None:
    run = new_run(home_store, "cancelled run")
    Scheduler(home_store, warm=False).stop(run.id)
    assert home_store.get_run(run.id).status == Status.STOPPED
    app = train_page(run.id)
    no_problems(app)
    said = [text for text in every_text(app) if "before it started" in text.lower()]
    assert said == ["Stopped before it started."], said
    assert not any("after epoch 0" in text for text in every_text(app))


# Names and numbers that agree.


def test_a_run_is_named_after_its_model_and_data() -> None:
    preset = presets.get("digits_default").spec
    when = time.mktime((2025, 5, 1, 14, 3, 0, 0, 0, -1))
    assert names.run_name(preset, DataSettings(), when) == "digits_default on digits 2025-05-01 14:03"
    edited = preset.replace_layers(preset.layers[:-2] + preset.layers[-1:])
    assert names.run_name(edited, DataSettings(dataset="shapes"), when).startswith(
        "edited digits_default on shapes "
    )
    fitted = presets.get("digits_default").spec
    assert names.model_name(
        type(fitted)(input_shape=(28, 28, 1), layers=fitted.layers, name=fitted.name)
    ) == ("digits_default")  # Fitting the input to the data is not an edit.
    own = type(preset)(input_shape=(8, 8, 1), layers=preset.layers[:2], name="my net")
    assert names.run_name(own, DataSettings(dataset="/uploads/ab/pets.zip"), when).startswith(
        "my net on pets.zip "
    )


def test_runs_submitted_without_a_name_get_it_and_downloads_are_named_after_the_model(
    home_store: Store,
) -> None:
    preset = presets.get("digits_default").spec
    edited = preset.replace_layers(preset.layers[:-2] + preset.layers[-1:])
    run = home_store.create_run(
        RunRequest(
            spec=edited, data_settings=DataSettings(dataset="shapes"), training_settings=TrainingSettings()
        )
    )
    assert run.name.startswith("edited digits_default on shapes ")
    renamed = home_store.create_run(
        RunRequest(
            spec=preset,
            data_settings=DataSettings(),
            training_settings=TrainingSettings(),
            name="Digits classifier",
        )
    )
    assert exports.file_stem(renamed) == f"digits_default_{renamed.id}"


def test_parameter_counts_are_written_alike_on_every_page(home_store: Store) -> None:
    new_run(home_store, "counted run")
    total = presets.get("digits_default").spec
    runs = open_page("runs", timeout=TIMEOUT).run()
    no_problems(runs)
    model = open_page("model", timeout=TIMEOUT).run()
    assert not model.exception
    layers = next(frame for frame in model.dataframe if "Parameters" in frame.value.columns)
    metric = next(metric.value for metric in model.metric if metric.label == "Total parameters")
    assert int(layers.value["Parameters"].sum()) == int(metric.replace(",", ""))
    assert runs.dataframe[0].value.loc[0, "parameters"] == int(metric.replace(",", ""))  # The same model,
    # written the same way: every table's count column has the thousands separator the metric has.
    assert (
        column_formats(layers)["Parameters"] == column_formats(runs.dataframe[0])["parameters"] == "localized"
    )
    assert column_formats(layers)["FLOPs"] == "compact"
    assert total.name == runs.dataframe[0].value.loc[0, "model"]
    assert tables.count_text(1234567) == "1,234,567"


def test_a_capped_figure_says_how_many_it_shows_of_how_many() -> None:
    maps = np.random.default_rng(0).random((4, 4, 32)).astype(np.float32)
    assert (
        training_figures.feature_maps(maps, layer="conv2d_1").layout.title.text
        == "16 of 32 channels of conv2d_1"
    )
    few = training_figures.feature_maps(maps[:, :, :8], layer="conv2d_1")
    assert few.layout.title.text == "8 channels of conv2d_1"
    kernel = np.zeros((3, 3, 1, 64), dtype=np.float32)
    assert (
        training_figures.kernels(kernel, layer="c").layout.title.text
        == "32 of 64 filters of c, in reading order"
    )

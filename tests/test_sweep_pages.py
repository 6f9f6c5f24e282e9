"""The sweep form on the Train page and the sweep view on the Runs page, in AppTest."""

from __future__ import annotations

from pathlib import Path

from cnnlab.plain_text import as_text
from cnnlab.runs.queue import studies, sweep_watcher, sweeps, trials
from cnnlab.runs.queue.studies import Search
from cnnlab.runs.queue.sweep_plan import axis, plan
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.session import state
from tests.app_pages import column_formats, no_problems, open_page, read_back
from tests.test_sweep_search import Queued, learning_rates, template, trained
from tests.test_sweeps import SPEC, QueueInStore


def test_the_train_page_offers_a_search_that_needs_no_words_with_the_expert_options_folded(
    cnnlab_home: Path,
) -> None:
    app = open_page("train").run()
    no_problems(app)
    mode = app.radio(key="sweep_mode")
    assert mode.value == "search"
    assert mode.options == [
        "Try settings for me and stop the losing ones early (recommended)",
        "Every combination of the values I list",
    ]
    assert any(
        "**12 settings** of learning_rate in 0.0001..0.01 log x batch_size in {16, 32, 64} x dropout in 0.1..0.5 "
        "will be tried "
        "(TPE: each picked from what earlier trials scored), 40 epoch(s) each at most; a trial below the median of earlier "
        "trials after 2 epochs stops early." in caption.value
        for caption in app.caption
    ), [caption.value for caption in app.caption]
    assert app.toggle(key="sweep_expert").value is False
    assert not app.get("selectbox") or "sweep_sampler" not in {box.key for box in app.selectbox}  # Folded.
    assert not app.button(key="start_sweep").disabled
    # A range typed in a field replaces the default space; a log range from 0 is refused, saying why.
    app.text_input(key="sweep_learning_rate").input("0..1e-2 log").run()
    assert [read_back(error.value) for error in app.error] == [
        "The log range 0..0.01 log for learning_rate starts at 0; a log scale needs numbers above 0. "
        "Start it at a small positive number, e.g. 1e-4..1e-2 log."
    ]
    assert app.button(key="start_sweep").disabled
    app.text_input(key="sweep_learning_rate").input("1e-3..1e-1 log").run()
    app.toggle(key="sweep_expert").set_value(True).run()
    app.selectbox(key="sweep_pruner").set_value("hyperband").run()
    app.number_input(key="sweep_trials").set_value(6).run()
    no_problems(app)
    assert app.radio(key="sweep_mode").value == "search"
    assert any(
        "**6 settings** of learning_rate in 0.001..0.1 log will be tried" in caption.value
        and "Hyperband after 2 epochs" in caption.value
        for caption in app.caption
    )


def test_the_train_page_counts_the_planned_runs_and_names_a_refused_value(cnnlab_home: Path) -> None:
    app = open_page("train").run()
    no_problems(app)
    app.radio(key="sweep_mode").set_value("grid").run()
    app.text_input(key="sweep_learning_rate").input("1e-3, 1e-2").run()
    app.text_input(key="sweep_batch_size").input("16, 32").run()
    no_problems(app)
    assert any("**4 runs** will be planned (2 x 2)." in caption.value for caption in app.caption)
    assert not app.button(key="start_sweep").disabled
    app.text_input(key="sweep_batch_size").input("16, lots").run()
    assert [read_back(error.value) for error in app.error] == [
        "The value 'lots' for batch_size is not a whole number. List values separated by commas, e.g. 32,64."
    ]
    assert app.button(key="start_sweep").disabled


def test_the_runs_page_shows_the_sweep_and_makes_the_best_run_s_settings_the_draft(home_store: Store) -> None:
    planned = plan(SPEC, TrainingSettings(epochs=2), [axis("learning_rate", "1e-3,1e-2,3e-2")])
    sweep, queued = sweeps.submit(
        planned,
        QueueInStore(home_store),
        sweeps.Sweeps(home_store),
        data_settings=DataSettings(subset=300),
        name="lr",
        owner="local",
    )
    for run, accuracy in zip(queued, (0.6, 0.9, 0.7), strict=True):
        home_store.set_status(run.id, Status.STARTING)
        home_store.set_status(run.id, Status.RUNNING)
        home_store.add_epoch_metrics(
            run.id, {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_accuracy": accuracy}
        )
        home_store.set_status(run.id, Status.COMPLETED)
    app = open_page("runs")
    app.query_params["sweep"] = sweep.id
    app.run()
    no_problems(app)
    frame = app.dataframe(key=f"sweep_table_{sweep.id}")
    table = frame.value
    assert list(table["learning_rate"]) == [0.001, 0.01, 0.03]
    assert column_formats(frame)[sweeps.ACCURACY_COLUMN] == "percent"  # As the runs table writes it.
    assert list(table["best"]) == ["", "★", ""]
    assert any(f"Best run: {as_text(queued[1].name)}" in text.value for text in app.markdown)
    app.button(key="sweep_draft").click().run()
    setup = app.session_state[state.SETUP_KEY]
    assert (setup.training.learning_rate, setup.training.epochs, setup.data.subset) == (0.01, 2, 300)
    assert app.button(key=f"stop_sweep_{sweep.id}").disabled  # Every run has ended: nothing to stop.


def test_the_runs_page_shows_a_search_s_pruned_trials_importances_and_tries_more(home_store: Store) -> None:
    search = Search(sampler="random", pruner="median", trials=4, parallel=4, ranges=(learning_rates(),))
    sweep, queued = trials.start(
        template(),
        [axis("batch_size", "16,32")],
        search,
        Queued(home_store),
        sweeps.Sweeps(home_store),
        name="lr",
    )
    for run, last in zip(queued[:3], (0.7, 0.9, 0.8), strict=True):
        trained(home_store, run.id, [0.5, 0.6, 0.65, last])
    trained(home_store, queued[3].id, [0.1, 0.2], Status.RUNNING)
    book = sweeps.Sweeps(home_store)
    sweep_watcher.advance(book, book.get(sweep.id))  # Three told, the fourth pruned at epoch 2.
    trained(home_store, queued[3].id, [], Status.PRUNED)
    sweep_watcher.advance(book, book.get(sweep.id))
    assert book.get(sweep.id).closed
    studies.store_importances(studies.read(home_store.home, sweep.id))  # As the watcher's thread does.

    app = open_page("runs")
    app.query_params["sweep"] = sweep.id
    app.run()
    no_problems(app)
    table = app.dataframe(key=f"sweep_table_{sweep.id}").value
    assert list(table["status"]) == ["completed", "completed", "completed", "pruned"]
    assert (
        table[sweeps.REASON_COLUMN]
        .iloc[3]
        .startswith("Pruned at epoch 2: below the median of earlier trials (60.0%)")
    )
    assert any(
        "4 of 4 settings tried (1 stopped early as losing, 0 queued or training); the sweep has spent its budget."
        in caption.value
        for caption in app.caption
    )
    charts = {chart.key for chart in app.get("plotly_chart")}
    assert {f"sweep_importances_{sweep.id}", f"sweep_history_{sweep.id}"} <= charts, charts

    app.button(key=f"sweep_extend_{sweep.id}").click().run()
    no_problems(app)
    extended = book.get(sweep.id)
    assert extended.search is not None and extended.search.trials == 10 and not extended.closed

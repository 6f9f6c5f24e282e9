"""The sweep form on the Train page and the sweep view on the Runs page, in AppTest."""

from __future__ import annotations

from pathlib import Path

from cnnlab.plain_text import as_text
from cnnlab.runs.queue import sweeps
from cnnlab.runs.queue.sweep_plan import axis, plan
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.session import state
from tests.app_pages import column_formats, no_problems, open_page, read_back
from tests.test_sweeps import SPEC, QueueInStore


def test_the_train_page_counts_the_planned_runs_and_names_a_refused_value(cnnlab_home: Path) -> None:
    app = open_page("train").run()
    no_problems(app)
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

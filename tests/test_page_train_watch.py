"""The Train page made for watching (AppTest): while a run is followed, the settings fold into one line.

The live view's status, controls and first curves then come right under the page's title; "Edit
settings" opens the whole form above the run and "Hide settings" folds it again. On screen at
1280x720 in Chromium: tests/e2e/test_main_path.py.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.pages.train import settings_panel
from tests.app_pages import no_problems, open_page
from tests.made_runs import make_run, reached

SUMMARY = "Handwritten digits (8x8) · digits_default · Adam · learning rate 0.001 · batch size 32 · 40 epochs"


def _summary(app: AppTest) -> list[str]:
    return [text.value for text in app.text if "learning rate" in text.value]


def test_a_followed_run_folds_the_settings_into_one_line_with_an_edit_control(home_store: Store) -> None:
    run = make_run(home_store, name="watched run", status=Status.STARTING)
    reached(home_store, run.id, Status.STOPPED)
    app = open_page("train", run.id).run()
    no_problems(app)
    assert _summary(app) == [SUMMARY]
    # Folded: none of the form's widgets, and the run's own controls right under the summary.
    assert not [button for button in app.button if button.key == "start_training"]
    assert not [box for box in app.selectbox if box.key == "optimizer"]
    assert app.button(key="stop_run").disabled  # The run has ended.
    assert any(header.value.endswith("watched run") for header in app.subheader)

    app.button(key="edit_settings").click().run()
    no_problems(app)
    assert not _summary(app)
    assert app.selectbox(key="optimizer").value == "adam"
    app.number_input(key="epochs").set_value(12).run()
    assert not app.button(key="start_training").disabled
    assert any(header.value.endswith("watched run") for header in app.subheader)  # Still followed.

    app.button(key="hide_settings").click().run()
    no_problems(app)
    assert _summary(app) == [SUMMARY.replace("40 epochs", "12 epochs")]  # The edited draft.
    assert not [button for button in app.button if button.key == "start_training"]


def test_without_a_followed_run_the_form_is_open_and_cannot_be_hidden() -> None:
    app = open_page("train").run()
    no_problems(app)
    assert not _summary(app)
    assert not app.button(key="start_training").disabled
    assert not [button for button in app.button if button.key in ("hide_settings", "edit_settings")]


def test_the_summary_names_a_schedule_and_early_stopping_when_they_are_on() -> None:
    from cnnlab import share
    from cnnlab.model import presets
    from cnnlab.specs import DataSettings, TrainingSettings
    from cnnlab.ui.widgets.dataset_context import DatasetContext

    training = TrainingSettings(optimizer="sgd", learning_rate=0.05, schedule="cosine", early_stopping=True)
    setup = share.Setup(DataSettings(), presets.get("digits_default").spec, training)
    line = settings_panel.summary_line(setup, DatasetContext("Shapes", (16, 16, 1), 3))
    assert line == (
        "Shapes · digits_default · SGD · learning rate 0.05 · batch size 32 · 10 epochs · cosine schedule"
        " · early stopping"
    )

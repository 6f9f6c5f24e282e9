"""A link naming a run that is gone or has no model: the page names it and offers the others (AppTest).

Before, `/evaluate?run=doesnotexist` silently opened the newest completed run and rewrote the link.
Now Evaluate, Predict and Train say "run X does not exist (deleted?)", keep the link as it was, and
follow a run only when the user picks one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.model import presets
from cnnlab.plain_text import as_text
from cnnlab.run_request import RunRequest
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.app_pages import open_page

TIMEOUT = 90
MISSING = "doesnotexist"


def url_run(app: AppTest) -> str:
    """The run id in the page's URL (older AppTest holds each parameter as a list)."""
    value = app.query_params["run"]
    return value[-1] if isinstance(value, list) else value


def warnings(app: AppTest) -> list[str]:
    return [element.value for element in app.warning]


def queued_run(store: Store, name: str) -> str:
    run = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=DataSettings(),
            training_settings=TrainingSettings(epochs=2),
            name=name,
        )
    )
    return run.id


@pytest.fixture
def trained(trained_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The id of the one run really trained in the shared home, which the app under test reads."""
    monkeypatch.setenv("CNNLAB_HOME", str(trained_home[0]))
    return trained_home[1]


@pytest.mark.parametrize(("page", "key"), [("evaluate", "evaluate_run"), ("predict", "predict_run")])
def test_an_unknown_run_is_named_and_the_link_kept_until_a_pick(page: str, key: str, trained: str) -> None:
    app = open_page(page, MISSING, TIMEOUT).run()
    assert not app.exception, app.exception
    assert any(as_text(f"Run {MISSING!r} does not exist (deleted?)") in text for text in warnings(app)), (
        warnings(app)
    )
    assert url_run(app) == MISSING  # Not rewritten to another run.
    assert not app.metric and not app.get("plotly_chart")  # No other run is shown in its place.
    assert not [box for box in app.selectbox if box.key == key]
    picker = app.selectbox(key=f"{key}_instead")
    assert picker.value is None and [option.endswith(trained) for option in picker.options] == [True]
    picker.set_value(trained).run()
    assert not app.exception, app.exception
    assert url_run(app) == trained
    assert app.selectbox(key=key).value == trained
    assert not warnings(app)


def test_evaluate_shows_the_named_run_after_a_pick(trained: str) -> None:
    app = open_page("evaluate", MISSING, TIMEOUT).run()
    app.selectbox(key="evaluate_run_instead").set_value(trained).run()
    assert not app.exception and not app.error
    assert "Test accuracy" in [metric.label for metric in app.metric]


def test_a_run_without_a_model_yet_says_so(
    trained_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path))
    waiting = queued_run(Store(tmp_path), "waiting run")
    app = open_page("evaluate", waiting, TIMEOUT).run()
    assert not app.exception
    assert any("has not saved a model yet" in text and "waiting run" in text for text in warnings(app))
    assert url_run(app) == waiting
    assert not app.metric


def test_a_link_to_a_deleted_run_is_named_even_with_no_run_left(cnnlab_home: Path) -> None:
    app = open_page("evaluate", MISSING, TIMEOUT).run()
    assert not app.exception
    assert any(as_text("does not exist (deleted?)") in text for text in warnings(app))
    assert url_run(app) == MISSING


def test_train_names_an_unknown_run_and_follows_the_one_picked(home_store: Store) -> None:
    kept = queued_run(home_store, "kept run")
    home_store.set_status(kept, Status.STOPPED, reason="Stopped before it started.")
    app = open_page("train", MISSING, TIMEOUT).run()
    assert not app.exception, app.exception
    assert any(as_text(f"Run {MISSING!r} does not exist (deleted?)") in text for text in warnings(app))
    assert url_run(app) == MISSING
    assert not [header for header in app.subheader if "kept run" in header.value]
    picker = app.selectbox(key="train_run_instead")
    assert picker.value is None and len(picker.options) == 1 and picker.options[0].endswith(kept)
    picker.set_value(kept).run()
    assert not app.exception, app.exception
    assert url_run(app) == kept
    assert any(header.value.endswith("kept run") for header in app.subheader)

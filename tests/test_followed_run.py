"""The followed run belongs to the session: it stays when a page switch clears the address (AppTest).

Before, visiting Model and coming back to Train through the sidebar cleared `?run=`: Train said
"Start a run to watch..." while the run trained on, and Evaluate opened the newest run instead. Now
the session keeps the run it follows, puts it back in the address on every page, and shows it in the
sidebar; a link (`?run=ID`) still opens what it names, which becomes the followed run. A sidebar
click is played here as a page switch with the address's parameters cleared, as the browser does.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui import server
from cnnlab.ui.widgets import followed_run
from tests.app_pages import open_page
from tests.test_pages import new_run
from tests.test_run_links import url_run, warnings


def through_sidebar(app: AppTest, page: str) -> AppTest:
    """Open `page` as a click in the sidebar does: the address loses its parameters."""
    app.switch_page(f"app_pages/{page}.py")
    app.query_params.clear()
    app.run()
    assert not app.exception, app.exception
    return app


def stopped_run(store: Store, name: str) -> RunRecord:
    run = new_run(store, name)
    store.set_status(run.id, Status.STOPPED, reason="Stopped before it started.")
    return store.get_run(run.id)


def train_header(app: AppTest) -> list[str]:
    """The Train page's run headers (the live view's title is the run's name)."""
    return [header.value for header in app.subheader]


def sidebar_texts(app: AppTest) -> list[str]:
    return [element.value for element in app.sidebar.get("text")]


def test_train_keeps_following_the_run_after_another_page(home_store: Store) -> None:
    run = stopped_run(home_store, "kept run")
    app = open_page("train", run.id).run()
    assert any(header.endswith("kept run") for header in train_header(app))
    through_sidebar(app, "model")
    assert url_run(app) == run.id  # Back in the address, for a refresh or a shared link.
    assert sidebar_texts(app) == ["kept run"]
    through_sidebar(app, "train")
    assert url_run(app) == run.id
    assert any(header.endswith("kept run") for header in train_header(app))
    assert not [info.value for info in app.info if "Start a run to watch" in info.value]


@pytest.mark.parametrize("page", ["evaluate", "predict"])
def test_evaluate_and_predict_name_the_followed_run(home_store: Store, page: str) -> None:
    waiting = new_run(home_store, "waiting run")
    app = open_page("train", waiting.id).run()
    through_sidebar(app, page)
    assert url_run(app) == waiting.id
    assert any("has not saved a model yet" in text and "waiting run" in text for text in warnings(app))


def test_a_link_names_the_run_to_follow_from_then_on(home_store: Store) -> None:
    first = stopped_run(home_store, "first run")
    second = stopped_run(home_store, "second run")
    app = open_page("train", first.id).run()
    through_sidebar(app, "data")
    app.query_params["run"] = second.id  # A link opened in this tab.
    app.run()
    assert sidebar_texts(app) == ["second run"]
    through_sidebar(app, "train")
    assert url_run(app) == second.id
    assert any(header.endswith("second run") for header in train_header(app))


def test_starting_a_run_follows_it(home_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # The run is recorded as the scheduler would, without starting a worker (Keras) for it.
    monkeypatch.setattr(server, "submit", lambda request: home_store.create_run(request))
    earlier = stopped_run(home_store, "earlier run")
    app = open_page("train", earlier.id).run()
    app.button(key="edit_settings").click().run()  # While a run is followed, the form is folded.
    app.button(key="start_training").click().run()
    assert not app.exception, app.exception
    started = next(run for run in home_store.list_runs() if run.id != earlier.id)
    assert url_run(app) == started.id
    assert not [button for button in app.button if button.key == "start_training"]  # Folded again.
    through_sidebar(app, "model")
    assert url_run(app) == started.id
    assert sidebar_texts(app) == [started.name]


def test_homes_one_click_run_is_followed_on_every_page(
    home_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "submit", lambda request: home_store.create_run(request))
    app = open_page("home").run()
    app.button(key="quick_train").click().run()
    assert not app.exception, app.exception
    (started,) = home_store.list_runs()
    through_sidebar(app, "model")
    assert sidebar_texts(app) == ["Digits classifier"]
    through_sidebar(app, "train")
    assert url_run(app) == started.id
    assert any(header.endswith("Digits classifier") for header in train_header(app))


def test_the_sidebar_card_says_where_the_run_is(home_store: Store) -> None:
    run = stopped_run(home_store, "**not bold**")
    app = open_page("model", run.id).run()
    assert sidebar_texts(app) == ["**not bold**"]  # The learner's words as text, not markdown.
    captions = [caption.value for caption in app.sidebar.caption]
    assert "Stopped · epoch 0 of 10" in captions
    assert followed_run.progress_text(run) == "Stopped · epoch 0 of 10"


def test_no_card_without_a_followed_run(home_store: Store) -> None:
    stopped_run(home_store, "some run")
    app = open_page("model").run()
    assert not app.exception, app.exception
    assert sidebar_texts(app) == []
    assert "run" not in app.query_params


def _run_with_a_model(store: Store, name: str) -> RunRecord:
    """A run with a tiny saved Keras model (one 3x3 convolution) as its "latest" checkpoint."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, name="only"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    run = new_run(store, name, status=Status.RUNNING)
    store.save_checkpoint(run.id, "latest", 1, model.save)
    return run


@pytest.mark.slow
def test_learn_shows_the_followed_runs_kernels_and_follows_the_one_picked(home_store: Store) -> None:
    older = _run_with_a_model(home_store, "older run")
    newer = _run_with_a_model(home_store, "newer run")
    app = open_page("train", older.id).run()
    through_sidebar(app, "learn")
    picker = app.selectbox(key="learn_model_run")
    assert picker.value.startswith("older run · latest")  # Not the newest run.
    newer_label = next(option for option in picker.options if option.startswith("newer run"))
    picker.set_value(newer_label).run()
    assert not app.exception, app.exception
    assert url_run(app) == newer.id
    through_sidebar(app, "train")
    assert any(header.endswith("newer run") for header in train_header(app))


@pytest.mark.slow
def test_learn_says_when_the_followed_run_has_no_model_yet(home_store: Store) -> None:
    _run_with_a_model(home_store, "trained earlier")
    waiting = new_run(home_store, "waiting run")
    app = open_page("train", waiting.id).run()
    through_sidebar(app, "learn")
    assert any("The run you follow has not saved a model yet" in caption.value for caption in app.caption)
    assert url_run(app) == waiting.id


@pytest.mark.slow
def test_learn_says_when_the_followed_run_cannot_be_opened(home_store: Store) -> None:
    _run_with_a_model(home_store, "trained earlier")
    app = open_page("learn", "doesnotexist").run()
    assert not app.exception, app.exception
    assert any("The run you follow cannot be opened here" in caption.value for caption in app.caption)
    assert app.selectbox(key="learn_model_run").value.startswith("trained earlier · latest")

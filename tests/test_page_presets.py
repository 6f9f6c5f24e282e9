"""A preset's training settings are said, never silent (AppTest): the Model page's preset panel says
which settings loading a preset sets, the Train page says which came from it, and loading "Digits CNN
(default)" after another preset restores the default training settings exactly."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from cnnlab.model import presets
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.session import state
from tests.app_pages import no_problems, open_page
from tests.made_runs import make_run, reached
from tests.test_pages import url_setup


def load(app: AppTest, name: str) -> None:
    """Choose preset `name` on the Model page and load it, fitted to the data."""
    app.selectbox(key="preset_name").set_value(name).run()
    app.button(key="load_preset").click().run()
    assert not app.exception, app.exception


def captions(app: AppTest) -> list[str]:
    return [element.value for element in app.caption]


def test_the_model_page_says_which_training_settings_a_preset_sets() -> None:
    app = open_page("model").run()
    app.selectbox(key="preset_name").set_value("mnist_three_conv").run()
    said = [text for text in captions(app) if text.startswith("Loading it")]
    assert said == [
        "Loading it also sets the training: 5 epochs, batch size 64; every other training setting goes back "
        "to its default."
    ]
    # The preset's source is named by its title, not by a file number ("seed article 003").
    text = " ".join(captions(app))
    assert "*From the article “Applying CNNs in Practice: From Image Recognition to Deep Learning”.*" in text
    assert "seed article" not in text and "Source:" not in text
    app.selectbox(key="preset_name").set_value("lenet5").run()
    assert "Loading it keeps your training settings." in captions(app)


def test_the_train_page_names_the_preset_its_settings_came_from_and_the_default_preset_restores_them() -> (
    None
):
    app = open_page("model").run()
    load(app, "mnist_three_conv")
    training = url_setup(app).training
    assert (training.batch_size, training.epochs) == (64, 5)
    app.switch_page("app_pages/train.py").run()
    assert not app.exception, app.exception  # It does not fit 8x8 digits (it needs 28x28); the page says so.
    assert (
        "From the preset **Three-conv MNIST CNN** (loaded on the Model page): 5 epochs, batch size 64."
        in (captions(app))
    )
    app.switch_page("app_pages/model.py").run()
    load(app, "digits_default")
    assert url_setup(app).training == state.default_setup().training  # Batch size 32 again, and the rest.
    app.switch_page("app_pages/train.py").run()
    no_problems(app)
    assert app.select_slider(key="batch_size").value == 32
    line = next(text for text in captions(app) if text.startswith("From the preset"))
    assert "**Digits CNN (default)**" in line and "40 epochs" in line and "batch size" not in line


def test_a_preset_without_training_settings_keeps_the_note_of_the_one_before() -> None:
    app = open_page("model").run()
    load(app, "mnist_three_conv")
    load(app, "mnist_simple")  # Carries no training settings: batch size 64 stays, and says where from.
    assert url_setup(app).training.batch_size == 64
    app.switch_page("app_pages/train.py").run()
    assert any("**Three-conv MNIST CNN**" in text and "batch size 64" in text for text in captions(app))
    assert presets.get("mnist_simple").training == {}


def test_the_folded_train_summary_also_names_the_presets_settings(home_store: Store) -> None:
    app = open_page("model").run()
    load(app, "mnist_three_conv")
    run = make_run(home_store, name="followed run", status=Status.STARTING)
    reached(home_store, run.id, Status.STOPPED)
    app.query_params["run"] = run.id
    app.switch_page("app_pages/train.py").run()
    assert not app.exception, app.exception
    assert not [button for button in app.button if button.key == "start_training"]  # Folded.
    assert (
        "From the preset **Three-conv MNIST CNN** (loaded on the Model page): 5 epochs, batch size 64."
        in captions(app)
    )

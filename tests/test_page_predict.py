"""AppTest of the Predict page against a run really trained for one epoch in a temporary home."""

from __future__ import annotations

import io
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from streamlit.testing.v1 import AppTest

from cnnlab import specs
from cnnlab.model import presets
from cnnlab.runs import probes, training
from cnnlab.runs.scheduler import Scheduler
from cnnlab.runs.store import Store
from tests.app_pages import no_problems, open_page

TIMEOUT = 90


@pytest.fixture
def home(trained_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CNNLAB_HOME", str(trained_home[0]))
    probes.probes_path(Store(trained_home[0])).unlink(missing_ok=True)
    return trained_home[0]


def digit_png(index: int = 0, size: int = 64) -> bytes:
    """A real handwritten digit as a photo would show it: dark ink on white paper, enlarged."""
    pixels = 255 - (load_digits().images[index] * (255 / 16)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue()


def predict_page(run_id: str | None = None) -> AppTest:
    return open_page("predict", run_id, TIMEOUT).run()


def predictions(app: AppTest) -> pd.DataFrame:
    """The table of predictions (the drawing grid is a data frame too)."""
    return next(frame.value for frame in app.dataframe if "image" in frame.value.columns)


def test_without_runs_points_to_the_train_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path))
    app = predict_page()
    no_problems(app)
    assert "No run has saved a model yet" in app.info[0].value


def test_uploads_are_predicted_and_explained(home: Path, trained_home: tuple[Path, str]) -> None:
    app = predict_page(trained_home[1])
    no_problems(app)
    assert "Add an image" in app.info[0].value
    app.file_uploader(key="predict_uploads").set_value(
        [("zero.png", digit_png(0), "image/png"), ("one.png", digit_png(1), "image/png")]
    )
    app.run()
    no_problems(app)
    table = predictions(app)
    assert list(table["image"]) == ["zero.png", "one.png"]
    assert table["confidence"].between(0, 1).all()
    assert app.subheader[0].value.startswith("zero.png: ")
    # Steps, top-k, Grad-CAM with saliency, feature maps.
    assert len(app.get("plotly_chart")) >= 4
    layers = app.selectbox(key="predict_map_layer").options
    assert any("conv2d_1" in layer for layer in layers)
    app.selectbox(key="predict_chosen").set_value(1).run()
    no_problems(app)
    assert app.subheader[0].value.startswith("one.png: ")


def test_every_bad_image_gets_its_message(home: Path, trained_home: tuple[Path, str]) -> None:
    app = predict_page(trained_home[1])
    app.file_uploader(key="predict_uploads").set_value(
        [
            ("notes.txt", b"just some text", "text/plain"),
            ("broken.png", digit_png()[:60], "image/png"),
            ("empty.png", b"", "image/png"),
            ("good.png", digit_png(), "image/png"),
        ]
    )
    app.run()
    assert not app.exception, app.exception
    messages = [element.value for element in app.error]
    assert any(message.startswith("notes.txt: The file is not a supported image") for message in messages)
    assert any(message.startswith("broken.png: The PNG data is corrupt") for message in messages)
    assert any(message.startswith("empty.png: The file is empty") for message in messages)
    assert list(predictions(app)["image"]) == ["good.png"]


def test_the_drawing_grid_is_offered_for_digits(home: Path, trained_home: tuple[Path, str]) -> None:
    app = predict_page(trained_home[1])
    no_problems(app)
    grid = app.data_editor[0].value
    assert grid.shape == (16, 16) and not grid.to_numpy().any()
    assert any("Tick the cells of your digit" in caption.value for caption in app.caption)


class IdleExecutor:
    """An executor that starts nothing: the run stays where `submit` left it."""

    def prepare(self) -> None: ...

    def submit(self, run_id: str) -> int:
        return 0

    def alive(self, run_id: str) -> bool:
        return True

    def describe_exit(self, run_id: str) -> str:
        return "still running"

    def cancel(self, run_id: str) -> None: ...

    def forget(self, run_id: str) -> None: ...

    def shutdown(self) -> None: ...


def test_pinning_a_probe_reaches_the_next_run(
    home: Path, trained_home: tuple[Path, str], tmp_path: Path
) -> None:
    app = predict_page(trained_home[1])
    app.file_uploader(key="predict_uploads").set_value(("zero.png", digit_png(0), "image/png")).run()
    app.button(key="predict_pin").click().run()
    no_problems(app)
    store = Store(home)
    pinned = probes.pinned(store)
    assert len(pinned) == 1 and pinned[0].shape == (8, 8, 1)
    # A new run gets them as its probes snapshot, which training reads back for its telemetry.
    images = probes.for_input_shape(store, (8, 8, 1))
    other = Store(tmp_path / "other")
    scheduler = Scheduler(other, executor=IdleExecutor(), max_workers=1)
    run = scheduler.submit(
        spec=presets.get("digits_default").spec,
        data_settings=specs.DataSettings(),
        training_settings=specs.TrainingSettings(epochs=1),
        probes=images,
    )
    recorded = training._probes(other, run.id)
    assert recorded is not None and images is not None and np.allclose(recorded, images, atol=1e-3)
    resized = probes.for_input_shape(store, (28, 28, 3))
    assert resized is not None and resized.shape == (1, 28, 28, 3)
    app.button(key="predict_unpin").click().run()
    assert probes.pinned(store) == []


def test_a_model_file_with_a_lambda_layer_is_refused(home: Path, tmp_path: Path) -> None:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Lambda(lambda tensor: tensor * 2.0),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    path = tmp_path / "lambda.keras"
    model.save(path)
    app = predict_page()
    app.segmented_control(key="predict_source").set_value("A model file").run()
    app.file_uploader(key="predict_model_file").set_value(
        ("lambda.keras", path.read_bytes(), "application/zip")
    )
    app.run()
    assert not app.exception, app.exception
    assert any("Lambda layer" in element.value and "safe mode" in element.value for element in app.error)


def test_a_safe_model_file_predicts(home: Path, trained_home: tuple[Path, str]) -> None:
    checkpoint = Store(home).checkpoint_path(trained_home[1], "best").read_bytes()
    app = predict_page()
    app.segmented_control(key="predict_source").set_value("A model file").run()
    app.file_uploader(key="predict_model_file").set_value(("mine.keras", checkpoint, "application/zip")).run()
    app.toggle(key="predict_model_digit_like").set_value(True).run()
    app.file_uploader(key="predict_uploads").set_value(("zero.png", digit_png(0), "image/png")).run()
    no_problems(app)
    assert list(predictions(app)["image"]) == ["zero.png"]

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
from cnnlab.plain_text import as_text
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.runs.worker import training
from cnnlab.store import probes
from cnnlab.store.run_store import Store
from tests.app_pages import no_problems, open_page, read_back

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


def image_uploader(app: AppTest):  # type: ignore[no-untyped-def]  # AppTest's widget type is internal.
    """The images' file uploader, whatever generation of inputs the page is on."""
    return next(uploader for uploader in app.file_uploader if str(uploader.key).startswith("predict_uploads"))


def predictions(app: AppTest) -> pd.DataFrame:
    """The table of predictions."""
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
    assert table["confidence"].dropna().between(0, 1).all()
    # No confidence bar where the image looks unlike a digit (an enlarged 8x8 crop may).
    assert (table["confidence"].isna() == (table["check"] == "unlike a digit")).all()
    assert app.subheader[0].value.startswith(as_text("zero.png") + ": ")
    # Steps, top-k, Grad-CAM with saliency, feature maps.
    assert len(app.get("plotly_chart")) >= 4
    layers = app.selectbox(key="predict_map_layer").options
    assert any("conv2d_1" in layer for layer in layers)
    app.selectbox(key="predict_chosen").set_value(1).run()
    no_problems(app)
    assert app.subheader[0].value.startswith(as_text("one.png") + ": ")


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
    assert any(
        message.startswith(as_text("notes.txt") + ": " + as_text("The file is not a supported image"))
        for message in messages
    )
    assert any(
        message.startswith(as_text("broken.png") + ": " + as_text("The PNG data is corrupt"))
        for message in messages
    )
    assert any(
        message.startswith(as_text("empty.png") + ": " + as_text("The file is empty")) for message in messages
    )
    assert list(predictions(app)["image"]) == ["good.png"]


def test_the_drawing_canvas_is_offered_for_digits(home: Path, trained_home: tuple[Path, str]) -> None:
    """The canvas component is on the page (AppTest does not render it, so nothing is drawn and
    nothing is predicted) with a pen sized for the 8x8 digits; the old checkbox grid is gone."""
    app = predict_page(trained_home[1])
    no_problems(app)
    assert len(app.get("bidi_component")) == 1
    assert not app.data_editor
    assert any(
        "Draw one digit" in caption.value and "pen 30 pixels" in caption.value for caption in app.caption
    )
    assert "Add an image" in app.info[0].value


def test_a_display_widget_reruns_no_model_computation(
    home: Path, trained_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moving the top-k slider or picking a feature-map layer calls nothing in TensorFlow again:
    predictions, Grad-CAM, saliency and feature maps come from the caches."""
    from cnnlab.trained import inspection

    calls: list[str] = []
    for name in ("predict", "grad_cam_and_saliency", "feature_maps"):
        original = getattr(inspection, name)

        def counted(*arguments: object, _original: object = original, _name: str = name, **keywords: object):  # type: ignore[no-untyped-def]  # A spy.
            calls.append(_name)
            return _original(*arguments, **keywords)  # type: ignore[operator]  # The original function.

        monkeypatch.setattr(inspection, name, counted)
    app = predict_page(trained_home[1])
    app.file_uploader(key="predict_uploads").set_value(("seven.png", digit_png(7), "image/png")).run()
    no_problems(app)
    assert sorted(calls) == ["feature_maps", "grad_cam_and_saliency", "predict"]
    calls.clear()
    app.slider(key="predict_top_k").set_value(3).run()
    layers = app.selectbox(key="predict_map_layer").options
    app.selectbox(key="predict_map_layer").set_value(layers[-1]).run()
    no_problems(app)
    assert calls == []
    # Another Grad-CAM layer is a new computation, once.
    cam_layers = app.selectbox(key="predict_cam_layer").options
    app.selectbox(key="predict_cam_layer").set_value(cam_layers[0]).run()
    app.slider(key="predict_top_k").set_value(2).run()
    assert calls == ["grad_cam_and_saliency"]


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
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(epochs=1),
            probes=images,
        )
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


def test_a_model_file_from_elsewhere_has_its_preprocessing_chosen(
    home: Path, trained_home: tuple[Path, str]
) -> None:
    checkpoint = Store(home).checkpoint_path(trained_home[1], "best").read_bytes()  # Carries nothing.
    app = predict_page()
    app.segmented_control(key="predict_source").set_value("A model file").run()
    app.file_uploader(key="predict_model_file").set_value(("mine.keras", checkpoint, "application/zip")).run()
    style = app.radio(key="predict_model_style")
    assert style.value == "Digits 8x8 style: ink fills its box"  # Suggested by the 8x8 grey input.
    assert not any(element.value.startswith("Preprocessing as trained") for element in app.success)
    style.set_value("MNIST style: 20x20 box in 28x28").run()
    image_uploader(app).set_value(("zero.png", digit_png(0), "image/png")).run()
    no_problems(app)
    assert list(predictions(app)["image"]) == ["zero.png"]


def test_a_downloaded_model_file_is_prepared_as_trained_and_answers_like_its_run(
    home: Path, trained_home: tuple[Path, str]
) -> None:
    """The run's download, uploaded as a model file, says how it was trained and gives the run's answers."""
    from cnnlab.trained import checkpoints, exports

    store = Store(home)
    run = store.get_run(trained_home[1])
    images = [("zero.png", digit_png(0), "image/png"), ("seven.png", digit_png(7), "image/png")]
    through_run = predict_page(trained_home[1])
    through_run.file_uploader(key="predict_uploads").set_value(images).run()
    no_problems(through_run)
    # The run's page has measured the calibration beside the checkpoint; the download carries it.
    downloaded = exports.model_file(run, checkpoints.find(store, run.id, "best"))
    app = predict_page()
    app.segmented_control(key="predict_source").set_value("A model file").run()
    app.file_uploader(key="predict_model_file").set_value(("run.keras", downloaded, "application/zip")).run()
    assert [read_back(element.value) for element in app.success] == [
        "Preprocessing as trained: Handwritten digits (8x8), 8×8×1"
    ]
    assert not [radio for radio in app.radio if radio.key == "predict_model_style"]
    image_uploader(app).set_value(images).run()
    no_problems(app)
    pd.testing.assert_frame_equal(predictions(app), predictions(through_run))


def test_a_non_digit_is_said_to_be_unlike_a_digit_before_its_guess(
    home: Path, trained_home: tuple[Path, str]
) -> None:
    """A photo of noise: the headline says first that it does not look like a digit, then the guess;
    its row has no confidence bar and a short check; why is said in plain words as text (no PCA),
    the measurements one click away, and its scores are folded away. A real digit's answer is plain."""
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG")
    app = predict_page(trained_home[1])
    app.file_uploader(key="predict_uploads").set_value(
        [("noise.png", buffer.getvalue(), "image/png"), ("zero.png", digit_png(0), "image/png")]
    ).run()
    no_problems(app)
    table = predictions(app)
    assert "hint" not in table.columns  # The reasons are text, not a clipped table cell.
    assert table["check"][0] == "unlike a digit" and pd.isna(table["confidence"][0])
    assert table["prediction"][0].startswith("guess: ")
    assert table["check"][1] != "unlike a digit" and table["confidence"][1] > 0
    guess = table["prediction"][0].removeprefix("guess: ")
    assert app.subheader[0].value == as_text("noise.png") + ": " + as_text(
        f"This does not look like a digit; the model's guess would be {guess}"
    )  # File and class names are the user's: shown as text.
    [warning] = [element.value for element in app.warning]
    assert warning.startswith("This does not look like a digit; the model only knows 0-9. Why: ")
    assert "not a certainty" in warning
    shown = " ".join([app.subheader[0].value, warning])
    assert "PCA" not in shown and "residual" not in shown
    labels = [expander.label for expander in app.expander]
    assert "How this was decided" in labels and "The model's scores (not a certainty here)" in labels
    app.selectbox(key="predict_chosen").set_value(1).run()
    no_problems(app)
    assert (
        app.subheader[0].value.startswith(as_text("zero.png") + ": ")
        and "does not look" not in app.subheader[0].value
    )
    assert not [element for element in app.warning if "does not look like" in element.value]
    assert "The model's scores (not a certainty here)" not in [expander.label for expander in app.expander]


def test_the_newest_image_is_the_one_explained(home: Path, trained_home: tuple[Path, str]) -> None:
    """Adding an image explains it (not the one before); a pick from the list stays picked until a
    newer image comes."""
    app = predict_page(trained_home[1])
    app.file_uploader(key="predict_uploads").set_value(("zero.png", digit_png(0), "image/png")).run()
    assert app.subheader[0].value.startswith(as_text("zero.png") + ": ")
    app.file_uploader(key="predict_uploads").set_value(
        [("zero.png", digit_png(0), "image/png"), ("seven.png", digit_png(7), "image/png")]
    ).run()
    no_problems(app)
    assert app.subheader[0].value.startswith(as_text("seven.png") + ": ")
    app.selectbox(key="predict_chosen").set_value(0).run()
    assert app.subheader[0].value.startswith(as_text("zero.png") + ": ")
    app.slider(key="predict_top_k").set_value(2).run()
    assert app.subheader[0].value.startswith(as_text("zero.png") + ": ")  # The pick stays.
    app.file_uploader(key="predict_uploads").set_value(
        [
            ("zero.png", digit_png(0), "image/png"),
            ("seven.png", digit_png(7), "image/png"),
            ("three.png", digit_png(3), "image/png"),
        ]
    ).run()
    assert app.subheader[0].value.startswith(as_text("three.png") + ": ")


def test_changing_the_model_source_clears_the_images_and_answers(
    home: Path, trained_home: tuple[Path, str]
) -> None:
    app = predict_page(trained_home[1])
    app.file_uploader(key="predict_uploads").set_value(("zero.png", digit_png(0), "image/png")).run()
    assert list(predictions(app)["image"]) == ["zero.png"]
    app.segmented_control(key="predict_source").set_value("A model file").run()
    no_problems(app)
    assert not [frame for frame in app.dataframe if "image" in frame.value.columns]
    app.segmented_control(key="predict_source").set_value("A trained run").run()
    no_problems(app)
    assert not [frame for frame in app.dataframe if "image" in frame.value.columns]
    assert "Add an image" in app.info[0].value
    assert not image_uploader(app).value

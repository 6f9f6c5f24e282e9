"""The model's input under the user's control: the input row, the image-size fix for presets, and
the Model page's word on missing ImageNet weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from cnnlab import share
from cnnlab.model import presets, pretrained_weights, shapes
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.ui.pages.model import preset_panel
from cnnlab.ui.widgets.dataset_context import DatasetContext
from tests.app_pages import no_problems, open_page, read_back

pytestmark = pytest.mark.usefixtures("cnnlab_home")


def url_setup(app: AppTest) -> share.Setup:
    token = app.query_params["setup"]
    return share.decode(token[-1] if isinstance(token, list) else token)


def model_page(setup: share.Setup | None = None) -> AppTest:
    app = open_page("model", timeout=60)
    if setup is not None:
        app.query_params["setup"] = share.encode(setup)
    return app.run()


def total_parameters(app: AppTest) -> str:
    return next(metric.value for metric in app.metric if metric.label == "Total parameters")


def test_the_input_row_changes_the_input_and_keeps_the_layers() -> None:
    app = model_page()
    no_problems(app)
    before = url_setup(app).model
    assert app.expander[0].label.endswith("0. Input  →  8 × 8 × 1")
    app.number_input(key="input_height_8x8x1").set_value(12).run()
    app.number_input(key="input_width_12x8x1").set_value(12).run()
    after = url_setup(app).model
    assert after.input_shape == (12, 12, 1)
    assert after.layers == before.layers
    assert app.expander[0].label.endswith("0. Input  →  12 × 12 × 1")
    assert total_parameters(app) == f"{shapes.analyse(after).total_parameters:,}"
    # The model no longer matches the 8x8 digits: the input row says so and offers the data's shape.
    assert any(
        "The model's input is 12x12x1 but the dataset gives 8x8x1" in read_back(error.value)
        for error in app.error
    )
    # The message names the button the row really shows.
    use_data = app.button(key="input_use_data")
    assert use_data.label == "Use the data's 8 × 8 × 1"
    assert any(f'Press "{use_data.label}" in the input row' in read_back(error.value) for error in app.error)
    use_data.click().run()
    no_problems(app)
    assert url_setup(app).model.input_shape == (8, 8, 1)
    assert url_setup(app).model.layers == before.layers


def test_a_preset_set_elsewhere_shows_in_the_input_row() -> None:
    spec = presets.adapt(presets.get("lenet5").spec, (16, 16, 1), 10)
    app = model_page(share.Setup(DataSettings(image_size=16), spec, TrainingSettings()))
    no_problems(app)
    assert app.number_input(key="input_height_16x16x1").value == 16


def test_a_preset_that_needs_larger_images_offers_the_image_size_that_fits() -> None:
    app = model_page()
    app.selectbox(key="preset_name").set_value("mnist_minimal").run()
    app.button(key="load_preset").click().run()
    assert any("has a 1x1 input" in error.value for error in app.error)
    offer = app.button(key="preset_image_size_fix")
    assert offer.label == "Use image size 28 and load Minimal MNIST CNN"
    offer.click().run()
    no_problems(app)
    setup = url_setup(app)
    assert setup.data.image_size == 28
    assert setup.model.input_shape == (28, 28, 1)
    assert setup.model.layers == presets.get("mnist_minimal").spec.layers
    assert not any(button.key == "preset_image_size_fix" for button in app.button)


def digits_context(size: int = 8) -> DatasetContext:
    return DatasetContext("digits", (size, size, 1), 10)


def test_the_fix_is_the_presets_own_size_or_the_smallest_digits_size_that_fits() -> None:
    offered = 0
    for preset in presets.PRESETS.values():
        fix = preset_panel.image_size_fix(preset.spec, DataSettings(), digits_context())
        # The preset's own size first when the digits offer it, then the smallest.
        sizes = sorted((16, 28), key=lambda size: size != preset.input_shape[0])
        fits = [
            size
            for size in sizes
            if preset_panel.fitted(preset.spec, (size, size, 3 if preset.input_shape[2] == 3 else 1), 10).ok
        ]
        if preset_panel.fitted(preset.spec, (8, 8, 1), 10).ok:
            assert fix is None, preset.name
        elif fits:
            assert fix is not None and fix.data.image_size == fits[0], preset.name
            offered += 1
        else:
            assert fix is None, preset.name
    assert offered >= 5  # Most presets the 8x8 digits cannot take fit at 16 or 28.


def test_other_datasets_are_offered_their_own_sizes_and_colour() -> None:
    vgg = presets.get("vgg16_transfer").spec
    fix = preset_panel.image_size_fix(
        vgg, DataSettings(dataset="shapes"), DatasetContext("shapes", (16, 16, 1), 5)
    )
    assert fix is not None
    assert fix.data.color_mode == "rgb" and fix.image_shape[2] == 3
    assert preset_panel.fitted(vgg, fix.image_shape, 5).ok


def test_a_preset_no_size_of_the_data_fits_says_why_and_which_data_would_do() -> None:
    app = model_page()
    app.selectbox(key="preset_name").set_value("vgg16_transfer").run()
    # The digits stop at 28x28: no size offer, but an info naming the cause and the data that fits.
    assert not any(button.key == "preset_image_size_fix" for button in app.button)
    said = [read_back(info.value) for info in app.info]
    advice = [text for text in said if "No image size of the current data fixes it" in text]
    assert len(advice) == 1
    assert "at most 28x28x3" in advice[0] and "needs images of at least 32x32 but gets 28x28" in advice[0]
    assert "CIFAR-10" in advice[0] and "image size 32 or more in colour" in advice[0]
    # Loaded as written (not fitted), nothing is said about the data's sizes.
    app.checkbox(key="preset_fit").uncheck().run()
    assert not any("No image size" in info.value for info in app.info)


def test_the_size_the_advice_names_is_the_smallest_that_fits() -> None:
    vgg = presets.get("vgg16_transfer").spec
    needed = preset_panel.smallest_fitting_shape(vgg, 10)
    assert needed == (32, 32, 3)
    assert preset_panel.fitted(vgg, needed, 10).ok and not preset_panel.fitted(vgg, (28, 28, 3), 10).ok
    # Where a size of the data fits, the panel offers it instead; a preset that fits gets no advice.
    shapes_context = DatasetContext("Geometric shapes (generated)", (16, 16, 1), 5)
    assert preset_panel.no_size_fits(vgg, DataSettings(dataset="shapes"), shapes_context) is None
    digits = presets.get("digits_default").spec
    assert preset_panel.no_size_fits(digits, DataSettings(), digits_context()) is None


@pytest.fixture
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def test_the_model_page_says_when_imagenet_weights_are_missing(keras_home: Path) -> None:
    app = model_page()
    app.selectbox(key="preset_name").set_value("vgg16_transfer").run()
    file_name = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    warnings = [read_back(warning.value) for warning in app.warning]
    assert any(file_name in warning and str(keras_home / "models") in warning for warning in warnings)
    app.checkbox(key="preset_fit").uncheck()
    app.button(key="load_preset").click().run()
    assert (
        sum(file_name in read_back(warning.value) for warning in app.warning) == 2
    )  # the preset and the model
    (keras_home / "models").mkdir(parents=True)
    (keras_home / "models" / file_name).write_bytes(b"weights")
    app.run()
    assert not any(file_name in read_back(warning.value) for warning in app.warning)


@pytest.mark.parametrize(
    ("backbone", "input_shape"),
    [
        ("VGG16", (64, 64, 3)),
        ("ResNet50", (64, 64, 3)),
        ("MobileNetV2", (96, 96, 3)),
        ("MobileNetV2", (64, 64, 3)),
        ("EfficientNetB0", (64, 64, 3)),
    ],
)
def test_the_weights_file_is_the_one_keras_asks_for(
    backbone: str, input_shape: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Oracle: the file name Keras itself asks its cache for when building the backbone."""
    import keras
    from keras.src.utils import file_utils

    asked: list[str] = []

    def record(file_name: str, *arguments: Any, **keywords: Any) -> str:
        asked.append(file_name)
        raise OSError("offline in this test")

    monkeypatch.setattr(file_utils, "get_file", record)
    with pytest.raises(OSError, match="offline"):
        getattr(keras.applications, backbone)(include_top=False, weights="imagenet", input_shape=input_shape)
    assert asked == [pretrained_weights.weights_file(backbone, input_shape)]

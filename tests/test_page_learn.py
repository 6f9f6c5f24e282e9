"""The Learn page in Streamlit's AppTest: every section renders, the slider moves the written sum."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.lesson import arithmetic, content
from cnnlab.run_request import RunRequest
from cnnlab.ui.pages.learn import learn_widgets
from cnnlab.ui.session import presentation
from tests.app_pages import open_page

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "learn.py")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path))
    return tmp_path


def run_page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception, [item.value for item in app.exception]
    return app


def written_sums(app: AppTest) -> list[str]:
    return [block.value for block in app.code]


def test_page_renders_every_section_with_the_worked_example_first(home: Path) -> None:
    app = run_page()
    headers = [header.value for header in app.header]
    assert headers[0] == "1. A worked example: an X and a vertical-edge filter" and len(headers) == 4
    # The source article is named by its title, not by a file number.
    captions = [caption.value for caption in app.caption]
    assert any("“Implementing a Convolutional Neural Network with Python”" in caption for caption in captions)
    assert not any("seed article" in text.lower() for text in [*captions, *headers])
    first = written_sums(app)[0]
    assert first.endswith("= 0") and first.startswith("(1×1) + (0×0) + (0×-1)")
    assert app.slider(key="learn_example_step").max == 16  # 4x4 positions.
    assert any("(1×1) + (1×0) + (0×-1)" in caption.value for caption in app.caption)  # The article's patch.
    assert any("(6 − 3 + 2×0) / 1 + 1 = 4" in markdown.value for markdown in app.markdown)
    assert len(app.get("plotly_chart")) >= 5  # Input, kernel, feature map (x2), ReLU, pooling.
    assert not app.error
    assert any("Train" in info.value for info in app.info)  # No run yet: a pointer to the Train page.
    assert app.table[0].value.index.name == "Factors"


def test_moving_the_slider_changes_the_written_sum(home: Path) -> None:
    app = run_page()
    before = written_sums(app)[0]
    app.slider(key="learn_example_step").set_value(5).run()
    after = written_sums(app)[0]
    assert after != before
    step = arithmetic.convolution_step(content.x_image(), content.KERNELS["Vertical edge"], 1, "valid", 4)
    assert after == "\n".join(step.lines) and after.endswith("= -2")
    assert any(
        "Step 5 of 16" in markdown.value and "row 1, column 0" in markdown.value for markdown in app.markdown
    )


def test_controls_change_the_formula_and_the_output(home: Path) -> None:
    app = run_page()
    app.slider(key="learn_stride").set_value(2).run()
    assert any(
        "not a whole number" in markdown.value and "floor) to 2" in markdown.value
        for markdown in app.markdown
    )
    assert app.slider(key="learn_explore_step").max == 4
    app.radio(key="learn_padding").set_value("same").run()
    assert any("ceil(6 / 2) = 3" in markdown.value for markdown in app.markdown)
    assert app.slider(key="learn_explore_step").max == 9
    app.selectbox(key="learn_kernel_name").set_value("Sobel y").run()
    app.radio(key="learn_input_source").set_value("Digits sample").run()
    app.number_input(key="learn_input_digit").set_value(3).run()
    assert not app.exception
    assert any("a 3" in caption.value for caption in app.caption)
    assert app.slider(key="learn_explore_step").max == 16  # 8x8 digit, stride 2, same: 4x4.


def test_drawn_input_and_custom_kernel(home: Path) -> None:
    app = run_page()
    app.radio(key="learn_input_source").set_value("Draw").run()
    assert not app.exception and any("drawing" in caption.value for caption in app.caption)
    app.selectbox(key="learn_kernel_name").set_value(learn_widgets.CUSTOM_KERNEL).run()
    app.number_input(key="learn_kernel_size").set_value(4).run()
    assert not app.exception
    assert app.slider(key="learn_explore_step").max == 16  # 7x7 drawing, 4x4 kernel: 4x4 output.


def test_predict_then_reveal(home: Path) -> None:
    app = run_page()
    app.toggle(key="learn_predict_on").set_value(True).run()
    assert "learn_explore_step" not in [slider.key for slider in app.slider]  # The output is hidden ...
    assert any("Check your prediction" in info.value for info in app.info)
    assert any(
        markdown.value.endswith("/ 1 + 1 = ?") for markdown in app.markdown
    )  # The formula hides its result.
    app.number_input(key="learn_predict_rows").set_value(4)
    app.number_input(key="learn_predict_columns").set_value(3)
    app.button(key="learn_predict_check").click().run()
    assert app.error and "4x4" in app.error[0].value  # ... wrong, and told so, then shown.
    assert "learn_explore_step" in [slider.key for slider in app.slider]
    app.slider(key="learn_stride").set_value(3).run()  # New settings: predict again.
    assert "learn_explore_step" not in [slider.key for slider in app.slider]
    app.number_input(key="learn_predict_rows").set_value(2)
    app.number_input(key="learn_predict_columns").set_value(2)
    app.button(key="learn_predict_check").click().run()
    assert app.success and "Right: 2x2" in app.success[0].value


def test_presentation_mode_injects_large_type(home: Path) -> None:
    app = open_page("learn").run()  # Through app.py, which gives every page the toggle.
    app.sidebar.toggle(key=presentation.TOGGLE_KEY).set_value(True).run()
    assert not app.exception
    css = [markdown.value for markdown in app.markdown if "<style>" in markdown.value]
    assert css and "stSidebar" in css[0] and "display: none" in css[0]


@pytest.mark.slow
def test_real_model_section_shows_a_runs_kernels(home: Path) -> None:
    import keras

    from cnnlab.specs import DataSettings, LayerSpec, ModelSpec, TrainingSettings
    from cnnlab.store.run_store import Store
    from cnnlab.store.statuses import Status

    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="first"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(2, 3, padding="same", name="second"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    store = Store(home)
    run = store.create_run(
        RunRequest(
            spec=ModelSpec((8, 8, 1), (LayerSpec("Flatten"),), name="tiny"),
            data_settings=DataSettings(),
            training_settings=TrainingSettings(),
            name="tiny",
        ),
        status=Status.RUNNING,
    )
    store.save_checkpoint(run.id, "latest", 1, model.save)
    app = run_page()
    assert not app.error, [error.value for error in app.error]
    assert app.selectbox(key="learn_model_run").value.startswith("tiny · latest")
    checks = [caption.value for caption in app.caption if "Checked against Keras" in caption.value]
    difference = float(re.search(r"largest difference ([0-9.]+e[+-][0-9]+)", checks[0]).group(1))
    assert difference < 1e-4
    app.selectbox(key="learn_model_layer").set_value(app.selectbox(key="learn_model_layer").options[1]).run()
    assert not app.exception and not app.error
    # A cell of the second conv (after conv 3x3 and pool 2x2, 'same' 3x3) sees up to 8x8 input pixels.
    fields = [caption.value for caption in app.caption if caption.value.startswith("Green box:")]
    assert "the 8x8 input pixels" in fields[0]
    checks = [caption.value for caption in app.caption if "Checked against Keras" in caption.value]
    assert float(re.search(r"largest difference ([0-9.]+e[+-][0-9]+)", checks[0]).group(1)) < 1e-4
    app.radio(key="learn_model_channels").set_value(app.radio(key="learn_model_channels").options[1]).run()
    assert not app.exception and np.isfinite(len(app.code))

"""The Learn page's last section: the real kernels of a trained run, applied the same way.

Keras is imported only inside the cached loaders, so the rest of the Learn page stays fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from cnnlab.data import images
from cnnlab.errors import CnnLabError
from cnnlab.figures import learn as figures
from cnnlab.lesson import lesson
from cnnlab.runs.store import Store
from cnnlab.ui import learn_widgets, server

KEY = "learn_model"
_WINDOW_LAYERS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D")
_SPATIALLY_NEUTRAL = ("InputLayer", "Rescaling", "Normalization", "BatchNormalization", "Dropout", "SpatialDropout2D",
                      "Activation", "ReLU", "LeakyReLU", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
                      "RandomContrast", "RandomBrightness", "GaussianNoise")  # fmt: skip


@st.cache_resource(max_entries=3, show_spinner="Loading the model (TensorFlow starts the first time)...")
def load_model(run_id: str, path: str, modified: float) -> Any:
    """The checkpoint at `path` of run `run_id` (`modified` makes a rewritten checkpoint reload)."""
    import keras

    return keras.saving.load_model(path, safe_mode=True, compile=False)


@st.cache_data(max_entries=16, show_spinner=False)
def layer_input_output(
    run_id: str, path: str, modified: float, layer_index: int, image: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """What layer `layer_index` receives and returns for one (height, width, channels) image."""
    import keras

    model = load_model(run_id, path, modified)
    layer = model.layers[layer_index]
    probe = keras.Model(model.inputs, [layer.input, layer.output])
    received, returned = probe([image[np.newaxis].astype("float32")], training=False)
    return np.asarray(received)[0], np.asarray(returned)[0]


def window_layers(model: Any, last_index: int) -> list[lesson.WindowLayer] | None:
    """The sliding-window layers up to `last_index`, or None when another layer changes the size."""
    chain = []
    for layer in model.layers[: last_index + 1]:
        kind = type(layer).__name__
        if kind in _WINDOW_LAYERS:
            if any(rate != 1 for rate in getattr(layer, "dilation_rate", (1, 1))):
                return None
            size = tuple(getattr(layer, "kernel_size", None) or layer.pool_size)
            shape = tuple(int(value) for value in layer.input.shape[1:3])
            chain.append(lesson.window_layer(shape, size, tuple(layer.strides), layer.padding.lower()))
        elif kind not in _SPATIALLY_NEUTRAL:
            return None
    return chain


def model_image(grid: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The lesson's input grid scaled to [0, 1] and resized to the model's (height, width, channels)."""
    grid = np.asarray(grid, dtype=np.float32)
    if grid.max() > 1:
        grid = grid / grid.max()
    resized = images.resize_array(np.clip(grid, 0, 1)[:, :, np.newaxis], shape[0], shape[1])
    return images.to_channels(resized, shape[2])


def _checkpoints(store: Store) -> dict[str, tuple[Any, str, str]]:
    """Label to (run, checkpoint name, path) for every run whose checkpoint file exists."""
    found = {}
    for run in store.list_runs(limit=50):
        for which in sorted(store.checkpoints(run.id)):
            if which.startswith("epoch_"):
                continue  # Per-epoch files hold layer weights only, not a model Keras can load.
            path = store.checkpoint_path(run.id, which)
            if path.exists():
                found[f"{run.name} · {which} ({run.id}, {run.status})"] = (run, which, str(path))
    return found


def _describe(index: int, layer: Any) -> str:
    kernel = "x".join(str(size) for size in layer.kernel_size)
    return f"{layer.name} (layer {index}): {layer.filters} filters {kernel}, strides {layer.strides[0]}, {layer.padding}"


def real_model_section(grid: np.ndarray) -> None:
    """Pick a run, a conv layer and a filter; show its kernel applied to the grid, and the receptive field."""
    try:
        choices = _checkpoints(server.store())
    except CnnLabError as error:
        st.error(str(error))
        return
    if not choices:
        st.info(
            "No trained run with a saved checkpoint yet. Train a model on the **Train** page, then come back here."
        )
        return
    label = st.selectbox("Run and checkpoint", list(choices), key=f"{KEY}_run")
    run, _, path = choices[label]
    try:
        model = load_model(run.id, path, _modified(path))
    except Exception as error:  # A damaged or foreign checkpoint is the user's file, not a bug of ours.
        st.error(f"Could not load {path}: {error}. Choose another checkpoint or train the run again.")
        return
    convolutions = [
        (index, layer) for index, layer in enumerate(model.layers) if type(layer).__name__ == "Conv2D"
    ]
    if not convolutions:
        st.info("This model has no Conv2D layer of its own (a pretrained backbone keeps its layers inside).")
        return
    names = {_describe(index, layer): (index, layer) for index, layer in convolutions}
    index, layer = names[st.selectbox("Convolution layer", list(names), key=f"{KEY}_layer")]
    kernels, bias = (np.asarray(weight) for weight in layer.get_weights()[:2]) if layer.use_bias else (
        np.asarray(layer.get_weights()[0]), np.zeros(layer.filters))  # fmt: skip
    shape = tuple(int(value) for value in model.inputs[0].shape[1:])
    image = model_image(grid, shape)
    received, returned = layer_input_output(run.id, path, _modified(path), index, image)
    controls = st.columns(3)
    which = int(controls[0].number_input("Filter", 0, layer.filters - 1, 0, key=f"{KEY}_filter"))
    stride, padding = int(layer.strides[0]), layer.padding.lower()
    rows, columns = lesson.output_shape(received.shape[:2], kernels.shape[:2], stride, padding)
    row = int(controls[1].number_input("Output row", 0, rows - 1, rows // 2, key=f"{KEY}_row"))
    column = int(controls[2].number_input("Output column", 0, columns - 1, columns // 2, key=f"{KEY}_column"))
    summed = st.radio(
        "Channels", ["Sum over all input channels (what the layer computes)", "First input channel only"],
        key=f"{KEY}_channels", horizontal=True,
    ).startswith("Sum")  # fmt: skip
    st.caption(
        f"This layer receives {received.shape[2]} channel(s) and has one {kernels.shape[0]}x{kernels.shape[1]} kernel "
        "slice per channel for each filter. It correlates every channel with its own slice and adds the results "
        "plus the filter's bias. 'First input channel only' shows one slice's share of that sum."
    )
    feature_map = lesson.convolve_channels(received, kernels[:, :, :, which], float(bias[which]), stride, padding,
                                           sum_channels=summed)  # fmt: skip
    chain = window_layers(model, index)
    field = lesson.receptive_field(chain, row, column).clipped(shape[:2]) if chain is not None else None
    size = learn_widgets.font_size()
    left, middle, right = st.columns([5, 3, 5])
    left.plotly_chart(
        figures.input_figure(
            image[:, :, 0], field=field, title="Model input (channel 0)", font_size=size - 2, digits=2, height=360
        ),
        key=f"{KEY}_input_chart", config={"displayModeBar": False},
    )  # fmt: skip
    middle.plotly_chart(
        figures.kernel_figure(kernels[:, :, 0, which], title=f"Filter {which} (channel 0)", font_size=size, digits=2),
        key=f"{KEY}_kernel_chart", config={"displayModeBar": False},
    )  # fmt: skip
    right.plotly_chart(
        figures.feature_map_figure(feature_map, current=(row, column), title="Feature map (pre-activation)", font_size=size - 2, digits=2, height=360),
        key=f"{KEY}_map_chart", config={"displayModeBar": False},
    )  # fmt: skip
    if field is None:
        st.caption(
            "The receptive field is not drawn: a layer before this one changes the size in a way not traced here."
        )
    else:
        st.caption(
            f"Green box: the receptive field, the {field.height}x{field.width} input pixels that output cell "
            f"({row}, {column}) depends on. Numbers are rounded to 2 decimals."
        )
    _explain_cell(
        received, kernels[:, :, :, which], float(bias[which]), stride, padding, (row, column), summed
    )
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    if summed and activation in ("relu", "linear"):
        ours = lesson.relu(feature_map) if activation == "relu" else feature_map
        difference = float(np.abs(ours - returned[:, :, which]).max())
        st.caption(
            f"Checked against Keras' own output of this layer (activation {activation}): largest difference {difference:.1e}."
        )


def _modified(path: str) -> float:
    from pathlib import Path

    return Path(path).stat().st_mtime


def _explain_cell(
    received: np.ndarray, kernels: np.ndarray, bias: float, stride: int, padding: str, cell: tuple[int, int], summed: bool
) -> None:  # fmt: skip
    columns = lesson.output_shape(received.shape[:2], kernels.shape[:2], stride, padding)[1]
    index = cell[0] * columns + cell[1]
    if not summed:
        step = lesson.convolution_step(received[:, :, 0], kernels[:, :, 0], stride, padding, index)
        st.code("\n".join(step.lines), language=None, wrap_lines=True)
        return
    parts = [lesson.convolution_step(received[:, :, channel], kernels[:, :, channel], stride, padding, index).total
             for channel in range(received.shape[2])]  # fmt: skip
    shown = " + ".join(
        f"channel {channel}: {lesson.format_number(part)}" for channel, part in enumerate(parts[:6])
    )
    more = f" + {len(parts) - 6} more channels" if len(parts) > 6 else ""
    total = sum(parts) + bias
    st.code(
        f"{shown}{more} + bias {lesson.format_number(bias)}\n= {lesson.format_number(total)}",
        language=None,
        wrap_lines=True,
    )

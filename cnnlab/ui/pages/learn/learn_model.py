"""The Learn page's last section: the real kernels of a trained run, applied the same way.

The run's model comes from the UI's one cached loader (`cnnlab.ui.cache.run_models`) and is read
through `cnnlab.trained.layers`. Both are imported only once a checkpoint is shown, so the rest
of the Learn page never waits for TensorFlow to start.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from cnnlab.data import prepare
from cnnlab.errors import CnnLabError
from cnnlab.figures import learn as figures
from cnnlab.lesson import arithmetic
from cnnlab.plain_text import as_text_lines
from cnnlab.store.reader import RunReader
from cnnlab.store.records import RunRecord
from cnnlab.trained import checkpoints
from cnnlab.trained.checkpoints import Checkpoint
from cnnlab.ui import server
from cnnlab.ui.session import presentation, state

if TYPE_CHECKING:
    from cnnlab.trained.layers import Convolution

KEY = "learn_model"


@st.cache_data(max_entries=16, show_spinner=False)
def layer_input_output(
    path: str, modified: int, layer_index: int, image: np.ndarray, _checkpoint: Checkpoint
) -> tuple[np.ndarray, np.ndarray]:
    """What layer `layer_index` of the checkpoint's model receives and returns for one image."""
    from cnnlab.trained import layers
    from cnnlab.ui.cache import run_models

    return layers.layer_input_output(run_models.checkpoint_model(_checkpoint), layer_index, image)


def model_image(grid: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The lesson's input grid scaled to [0, 1] and resized to the model's (height, width, channels)."""
    grid = np.asarray(grid, dtype=np.float32)
    if grid.max() > 1:
        grid = grid / grid.max()
    resized = prepare.resize_array(np.clip(grid, 0, 1)[:, :, np.newaxis], shape[0], shape[1])
    return prepare.to_channels(resized, shape[2])


def _checkpoints(store: RunReader, followed: str | None) -> dict[str, tuple[RunRecord, Checkpoint]]:
    """Label to (run, checkpoint) for every whole-model checkpoint whose file exists, of the recent runs
    and of the followed run (however old)."""
    runs = store.list_runs(limit=50)
    if followed is not None and followed not in {run.id for run in runs}:
        # A deleted run, or another student's, is left out: `_followed_index` says it cannot be opened.
        with contextlib.suppress(CnnLabError):
            runs.append(store.get_run(followed))
    found = {}
    for run in runs:
        for checkpoint in checkpoints.models(store, run.id):
            label = f"{run.name} · {checkpoint.name} (epoch {checkpoint.epoch}; {run.id}, {run.status})"
            found[label] = (run, checkpoint)
    return found


def _describe(convolution: Convolution) -> str:
    kernel = "x".join(str(size) for size in convolution.kernel_size)
    return (
        f"{convolution.name} (layer {convolution.index}): {convolution.filters} filters {kernel}, "
        f"strides {convolution.strides[0]}, {convolution.padding}"
    )


def _trained_model(checkpoint: Checkpoint) -> tuple[list[Convolution], tuple[int, int, int]] | None:
    """The checkpoint's Conv2D layers and input shape (TensorFlow starts here); None after a message."""
    from cnnlab.trained import layers
    from cnnlab.ui.cache import run_models

    try:
        model = run_models.checkpoint_model(checkpoint)
        shape = layers.summary(model).input_shape
    except CnnLabError as error:
        st.error(as_text_lines(error))
        return None
    return layers.convolutions(model), shape


def _followed_index(choices: dict[str, tuple[RunRecord, Checkpoint]]) -> int:
    """The first checkpoint of the followed run, else the newest run's (with a word why; that run is not
    followed unless the learner picks it)."""
    followed = state.followed_run()
    for index, (run, _) in enumerate(choices.values()):
        if run.id == followed:
            return index
    if followed is not None:
        try:
            server.store().get_run(followed)
        except CnnLabError:  # Deleted, or another student's: nothing of it is said here.
            st.caption("The run you follow cannot be opened here, so another run is shown. Pick one below.")
        else:
            st.caption(
                "The run you follow has not saved a model yet (it saves one at the end of its first epoch), "
                "so another run is shown. Come back after its first epoch, or pick a run below."
            )
    return 0


def _follow_picked(choices: dict[str, tuple[RunRecord, Checkpoint]]) -> None:
    """Follow the run the learner picked, on this page and the others."""
    label = st.session_state[f"{KEY}_run"]
    if label in choices:
        state.follow_run(choices[label][0].id)


def real_model_section(grid: np.ndarray) -> None:
    """Pick a run (the followed one at first), a conv layer and a filter; show its kernel applied to the grid, and the receptive field."""
    try:
        choices = _checkpoints(server.store(), state.followed_run())
    except CnnLabError as error:
        st.error(as_text_lines(error))
        return
    if not choices:
        st.info(
            "No trained run with a saved checkpoint yet. Train a model on the **Train** page, then come back here."
        )
        return
    labels = list(choices)
    label = st.selectbox(
        "Run and checkpoint",
        labels,
        index=_followed_index(choices),
        key=f"{KEY}_run",
        on_change=_follow_picked,
        args=(choices,),
    )
    _, checkpoint = choices[label]
    loaded = _trained_model(checkpoint)
    if loaded is None:
        return
    convolutions, shape = loaded
    if not convolutions:
        st.info("This model has no Conv2D layer of its own (a pretrained backbone keeps its layers inside).")
        return
    names = {_describe(convolution): convolution for convolution in convolutions}
    layer = names[st.selectbox("Convolution layer", list(names), key=f"{KEY}_layer")]
    image = model_image(grid, shape)
    received, returned = layer_input_output(
        str(checkpoint.path), checkpoint.modified, layer.index, image, checkpoint
    )
    controls = st.columns(3)
    which = int(controls[0].number_input("Filter", 0, layer.filters - 1, 0, key=f"{KEY}_filter"))
    kernels, bias = layer.kernels[:, :, :, which], float(layer.bias[which])
    stride, padding = layer.strides[0], layer.padding
    rows, columns = arithmetic.output_shape(received.shape[:2], kernels.shape[:2], stride, padding)
    row = int(controls[1].number_input("Output row", 0, rows - 1, rows // 2, key=f"{KEY}_row"))
    column = int(controls[2].number_input("Output column", 0, columns - 1, columns // 2, key=f"{KEY}_column"))
    summed = st.radio(
        "Channels",
        ["Sum over all input channels (what the layer computes)", "First input channel only"],
        key=f"{KEY}_channels",
        horizontal=True,
    ).startswith("Sum")
    st.caption(
        f"This layer receives {received.shape[2]} channel(s) and has one {kernels.shape[0]}x{kernels.shape[1]} "
        "kernel slice per channel for each filter. It correlates every channel with its own slice and adds the "
        "results plus the filter's bias. 'First input channel only' shows one slice's share of that sum."
    )
    feature_map = arithmetic.convolve_channels(received, kernels, bias, stride, padding, sum_channels=summed)
    field = _receptive_field(checkpoint, layer.index, (row, column), shape)
    _draw(image, kernels[:, :, 0], feature_map, field, which, (row, column))
    _explain_cell(received, kernels, bias, stride, padding, (row, column), summed)
    if summed and layer.activation in ("relu", "linear"):
        ours = arithmetic.relu(feature_map) if layer.activation == "relu" else feature_map
        difference = float(np.abs(ours - returned[:, :, which]).max())
        st.caption(
            f"Checked against Keras' own output of this layer (activation {layer.activation}): "
            f"largest difference {difference:.1e}."
        )


def _receptive_field(
    checkpoint: Checkpoint, layer_index: int, cell: tuple[int, int], shape: tuple[int, int, int]
) -> arithmetic.Box | None:
    """The input pixels output `cell` of the layer depends on, or None when the walk cannot trace it."""
    from cnnlab.trained import layers
    from cnnlab.ui.cache import run_models

    windows = layers.sliding_windows(run_models.checkpoint_model(checkpoint), layer_index)
    if windows is None:
        return None
    chain = [
        arithmetic.window_layer(window.input_size, window.window, window.strides, window.padding)
        for window in windows
    ]
    return arithmetic.receptive_field(chain, *cell).clipped(shape[:2])


def _draw(
    image: np.ndarray,
    kernel: np.ndarray,
    feature_map: np.ndarray,
    field: arithmetic.Box | None,
    which: int,
    cell: tuple[int, int],
) -> None:
    """The model's input with the receptive field, the filter's first slice, and the feature map."""
    size = presentation.font_size()
    no_toolbar = {"displayModeBar": False}
    left, middle, right = st.columns([5, 3, 5])
    left.plotly_chart(
        figures.input_figure(
            image[:, :, 0],
            field=field,
            title="Model input (channel 0)",
            font_size=size - 2,
            digits=2,
            height=360,
        ),
        key=f"{KEY}_input_chart",
        config=no_toolbar,
    )
    middle.plotly_chart(
        figures.kernel_figure(kernel, title=f"Filter {which} (channel 0)", font_size=size, digits=2),
        key=f"{KEY}_kernel_chart",
        config=no_toolbar,
    )
    right.plotly_chart(
        figures.feature_map_figure(
            feature_map,
            current=cell,
            title="Feature map (pre-activation)",
            font_size=size - 2,
            digits=2,
            height=360,
        ),
        key=f"{KEY}_map_chart",
        config=no_toolbar,
    )
    if field is None:
        st.caption(
            "The receptive field is not drawn: a layer before this one changes the size in a way not traced here."
        )
    else:
        st.caption(
            f"Green box: the receptive field, the {field.height}x{field.width} input pixels that output cell "
            f"{cell} depends on. Numbers are rounded to 2 decimals."
        )


def _explain_cell(
    received: np.ndarray,
    kernels: np.ndarray,
    bias: float,
    stride: int,
    padding: str,
    cell: tuple[int, int],
    summed: bool,
) -> None:
    columns = arithmetic.output_shape(received.shape[:2], kernels.shape[:2], stride, padding)[1]
    index = cell[0] * columns + cell[1]
    if not summed:
        step = arithmetic.convolution_step(received[:, :, 0], kernels[:, :, 0], stride, padding, index)
        st.code("\n".join(step.lines), language=None, wrap_lines=True)
        return
    parts = [
        arithmetic.convolution_step(
            received[:, :, channel], kernels[:, :, channel], stride, padding, index
        ).total
        for channel in range(received.shape[2])
    ]
    shown = " + ".join(
        f"channel {channel}: {arithmetic.format_number(part)}" for channel, part in enumerate(parts[:6])
    )
    more = f" + {len(parts) - 6} more channels" if len(parts) > 6 else ""
    total = sum(parts) + bias
    st.code(
        f"{shown}{more} + bias {arithmetic.format_number(bias)}\n= {arithmetic.format_number(total)}",
        language=None,
        wrap_lines=True,
    )

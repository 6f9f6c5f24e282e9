"""Widgets of the Learn page: the input and kernel pickers, the step-by-step walk-through and
"predict, then reveal". The arithmetic lives in `cnnlab.lesson`; presentation mode, on every page,
in `cnnlab.ui.session.presentation`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from cnnlab.data import decode
from cnnlab.errors import CnnLabError
from cnnlab.figures import learn as figures
from cnnlab.lesson import arithmetic, content
from cnnlab.plain_text import as_text_lines
from cnnlab.ui.session import presentation

PLAY_SECONDS = 1.5
INPUTS = ("The article's X", "O", "Digits sample", "Draw", "Upload")
CUSTOM_KERNEL = "Custom (type your own)"
PREDICT_KEY = "learn_predict"


def _figure_height(rows: int) -> int:
    return int(min(max(rows, 3) * (62 if presentation.font_size() > 14 else 46) + 90, 720))


@st.cache_data(show_spinner=False, max_entries=8)
def _decode_upload(data: bytes, size: int) -> np.ndarray:
    return content.image_to_grid(np.asarray(decode.decode_image(data)), size)


def choose_input(key: str = "learn_input") -> tuple[np.ndarray, str]:
    """The input grid the learner picks, and a sentence saying what it is."""
    source = st.radio("Input image", INPUTS, key=f"{key}_source", horizontal=True)
    if source == "O":
        return content.o_image(), "A 6x6 letter O: 1 is ink, 0 is background."
    if source == "Digits sample":
        index = st.number_input("Digit number (0-1796)", 0, 1796, 0, key=f"{key}_digit")
        digit, label = content.digits_sample(int(index))
        return (
            digit,
            f"Handwritten digit sample {index}, a {label}: 8x8 pixels, ink from 0 to 16 (scikit-learn).",
        )
    if source == "Draw":
        size = st.slider("Grid size", 4, 12, 7, key=f"{key}_draw_size")
        start = pd.DataFrame(np.eye(size, dtype=bool) | np.eye(size, dtype=bool)[::-1]).rename(columns=str)
        st.caption("Tick a box to ink that pixel (1); untick it for background (0).")
        drawn = st.data_editor(start, key=f"{key}_drawn_{size}", hide_index=True)
        return drawn.fillna(False).to_numpy(dtype=bool).astype(int), f"Your {size}x{size} drawing: 1 is ink."
    if source == "Upload":
        size = st.slider("Shrink to a grid of", 6, 16, 8, key=f"{key}_upload_size")
        upload = st.file_uploader(
            "An image", type=[ext[1:] for ext in decode.SUPPORTED_EXTENSIONS], key=f"{key}_file"
        )
        if upload is not None:
            try:
                grid = _decode_upload(upload.getvalue(), size)
            except CnnLabError as error:
                st.error(as_text_lines(error))
            else:
                return (
                    grid,
                    f"Your image shrunk to {size}x{size}, grey, ink = 1 (light backgrounds are inverted).",
                )
        st.info("Upload an image to use it; until then the X is shown.")
    return content.x_image(), "The article's 6x6 X: 1 is ink, 0 is background."


def choose_kernel(key: str = "learn_kernel") -> tuple[np.ndarray, str]:
    """A classic kernel or the learner's own numbers, editable in a grid; returns it and its name."""
    name = st.selectbox("Kernel", [*content.KERNELS, CUSTOM_KERNEL], key=f"{key}_name")
    if name == CUSTOM_KERNEL:
        size = st.number_input("Kernel size", 1, 5, 2, key=f"{key}_size")
        start = np.zeros((int(size), int(size)))
        start[0, 0] = 1
    else:
        start = content.KERNELS[name].astype(float)
        st.caption(content.KERNEL_NOTES[name])
    st.caption("Edit any weight below.")
    table = pd.DataFrame(start).rename(columns=str)
    edited = st.data_editor(table, key=f"{key}_editor_{name}_{start.shape[0]}", hide_index=True)
    return edited.astype(float).fillna(0.0).to_numpy(), name


def _walkthrough_body(
    image: np.ndarray, kernel: np.ndarray, stride: int, padding: str, key: str, playing: bool
) -> None:
    total = arithmetic.step_count(image.shape, kernel.shape, stride, padding)
    step_key = f"{key}_step"
    current = st.session_state.get(step_key, 1)
    if not 1 <= current <= total:
        current = 1
    if playing:
        current = content.next_step(current - 1, total) + 1
    st.session_state[step_key] = current
    if total > 1:
        st.slider("Step", 1, total, key=step_key, help="Moves the window one position at a time.")
    step = arithmetic.convolution_step(image, kernel, stride, padding, st.session_state[step_key] - 1)
    padding_amounts = arithmetic.padding_amounts(image.shape, kernel.shape, stride, padding)
    window = arithmetic.step_receptive_field(step, kernel.shape, padding_amounts)
    feature_map = arithmetic.convolve(image, kernel, stride, padding)
    size = presentation.font_size()
    height = _figure_height(image.shape[0] + padding_amounts.top + padding_amounts.bottom)
    left, middle, right = st.columns([5, 3, 4])
    left.plotly_chart(
        figures.input_figure(
            image,
            padding=padding_amounts,
            window=window,
            title="Input and window",
            font_size=size,
            height=height,
        ),
        key=f"{key}_input_chart",
        config={"displayModeBar": False},
    )
    middle.plotly_chart(
        figures.kernel_figure(kernel, font_size=size, height=_figure_height(kernel.shape[0])),
        key=f"{key}_kernel_chart",
        config={"displayModeBar": False},
    )
    right.plotly_chart(
        figures.feature_map_figure(
            feature_map,
            filled=step.index + 1,
            current=(step.row, step.column),
            font_size=size,
            height=_figure_height(feature_map.shape[0]),
        ),
        key=f"{key}_map_chart",
        config={"displayModeBar": False},
    )
    st.markdown(
        f"**Step {step.index + 1} of {total}:** multiply each pixel under the orange window by the kernel weight "
        f"on top of it, then add. The result lands in row {step.row}, column {step.column} of the feature map (black outline)."
    )
    st.code("\n".join(step.lines), language=None, wrap_lines=True)


def walkthrough(image: np.ndarray, kernel: np.ndarray, stride: int, padding: str, key: str) -> None:
    """A step slider and a play toggle over the window's positions, the three grids and the written sum.

    Playing reruns only this part every PLAY_SECONDS (a fragment), one step further each time,
    back to the first step after the last.
    """
    playing = st.toggle("▶ Play", key=f"{key}_play", help=f"Advance one step every {PLAY_SECONDS} seconds.")
    st.fragment(run_every=PLAY_SECONDS if playing else None)(_walkthrough_body)(
        image, kernel, stride, padding, key, playing
    )


def formula(
    shape: tuple[int, int], kernel_shape: tuple[int, int], stride: int, padding: str, *, reveal: bool = True
) -> None:
    """The output-size formula with the real numbers, for rows and (when they differ) columns.

    Unrevealed, only the left-hand side is written, ending in "= ?", so the learner works it out.
    """
    texts = [arithmetic.output_size(shape[axis], kernel_shape[axis], stride, padding).text for axis in (0, 1)]
    if not reveal:
        texts = [text.split(" = ", 1)[0] + " = ?" for text in texts]
    st.markdown(
        "**Output size = (W − F + 2P) / S + 1**, W input side, F kernel side, P zeros per side, S stride."
    )
    if texts[0] == texts[1]:
        st.markdown(f"Rows and columns: {texts[0]}")
    else:
        st.markdown(f"Rows: {texts[0]}\n\nColumns: {texts[1]}")


def predict_mode(key: str = PREDICT_KEY) -> bool:
    """The "predict, then reveal" toggle."""
    return st.toggle("Predict, then reveal", key=f"{key}_on", help="Guess the output size before you see it.")


def answer(signature: str, key: str = PREDICT_KEY) -> tuple[int, int] | None:
    """The learner's predicted (rows, columns) for the settings `signature`, if they gave one."""
    answered = st.session_state.get(f"{key}_answered")
    return answered[1] if answered is not None and answered[0] == signature else None


def ask_prediction(signature: str, key: str = PREDICT_KEY) -> None:
    """Number inputs for the predicted output size; checking stores the answer and reruns to reveal."""
    st.markdown("**Your prediction:** how big is the feature map?")
    rows_column, columns_column, button_column = st.columns([2, 2, 3], vertical_alignment="bottom")
    rows = rows_column.number_input("Rows", 0, 100, 0, key=f"{key}_rows")
    columns = columns_column.number_input("Columns", 0, 100, 0, key=f"{key}_columns")
    if button_column.button("Check my answer", key=f"{key}_check"):
        st.session_state[f"{key}_answered"] = (signature, (int(rows), int(columns)))
        st.rerun()
    st.info("Work out the output size with the formula above, then check your answer to see the output.")


def verdict(guess: tuple[int, int], actual: tuple[int, int]) -> None:
    """Tell the learner whether their prediction was right."""
    if content.check_prediction(guess, actual):
        st.success(f"Right: {guess[0]}x{guess[1]}.")
    else:
        st.error(f"Not quite: you said {guess[0]}x{guess[1]}, the feature map is {actual[0]}x{actual[1]}.")

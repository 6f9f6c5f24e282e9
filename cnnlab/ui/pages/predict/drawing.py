"""The Predict page's drawing canvas: freehand strokes in the browser, read back as an image.

The canvas is `streamlit-drawable-canvas` (a Streamlit component, version 0.13). Its toolbar has
undo, redo and "reset canvas & history"; the page reruns when a stroke ends (mouse or finger up),
so the prediction follows the drawing stroke by stroke. The ink is white on black, as in the
digit training images, and the pen is as wide as a stroke of a training digit would be on a
canvas this size (`pen_width`).

The component registers itself when its module is imported, which only works inside a running
Streamlit app, so it is imported inside `canvas_image`; when that fails the page says so and
offers the upload instead. Where no browser renders the component (Streamlit's AppTest), the
canvas stays empty and returns nothing.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

CANVAS_SIDE = 280
"""The canvas is square, this many CSS pixels a side."""

INK, BACKGROUND = "#FFFFFF", "#000000"
THINNEST_PEN, THICKEST_PEN = 16, 30
"""Pen widths in canvas pixels: a 28x28 model gets the thinnest, an 8x8 model the thickest."""


def pen_width(input_side: int, canvas_side: int = CANVAS_SIDE) -> int:
    """A pen width that draws strokes like the training images' at `input_side` pixels a side.

    A stroke of a training digit is about two input pixels wide (MNIST, 28x28) and one to two
    of the 8x8 digits; two input pixels scaled up to the canvas, kept between a pen that still
    reads as a stroke once shrunk (16) and one that leaves room for a digit's loops (30).
    """
    if input_side < 1:
        raise ValueError(f"The model's input side is a positive number of pixels; got {input_side}.")
    return int(np.clip(round(2 * canvas_side / input_side), THINNEST_PEN, THICKEST_PEN))


def canvas_to_image(image_data: np.ndarray | None) -> Image.Image | None:
    """The canvas's RGBA pixels as a grey image (white ink on black), or None when nothing is drawn.

    Transparent pixels count as background: the canvas is painted black, but a browser may send
    the strokes alone on a transparent layer.
    """
    if image_data is None:
        return None
    pixels = np.asarray(image_data)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.size == 0:
        return None
    colour = pixels[:, :, :3].astype(np.float32)
    if pixels.shape[2] == 4:
        colour = colour * (pixels[:, :, 3:4].astype(np.float32) / 255.0)
    grey = colour.mean(axis=2)
    if grey.max() < 8.0:  # Nothing drawn, or strokes too faint to see: an empty canvas.
        return None
    return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), mode="L")


def canvas_image(input_side: int, key: str) -> Image.Image | None:
    """Draw the canvas; return what is drawn on it as a grey image, or None while it is empty.

    Shows a caption instead of a canvas when the component is not installed or cannot run here.
    """
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as error:  # Any failure to register the component means no canvas, not a broken page.
        st.caption(
            f"The drawing canvas is not available here ({type(error).__name__}: {error}). Upload an image."
        )
        return None
    width = pen_width(input_side)
    st.caption(
        f"Draw one digit, large, in the middle (white ink on black, like the training images; pen {width} "
        "pixels). The answer updates when you lift the pen. The toolbar undoes, redoes and clears."
    )
    result = st_canvas(
        stroke_width=width,
        stroke_color=INK,
        background_color=BACKGROUND,
        height=CANVAS_SIDE,
        width=CANVAS_SIDE,
        drawing_mode="freedraw",
        update_streamlit=True,
        return_image_data=True,
        key=key,
    )
    return canvas_to_image(result.image_data)

"""The drawing canvas helper: the pen width for a model's input size and the canvas read back as an image."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.ui.pages.predict import drawing


def test_the_pen_draws_training_like_strokes_for_each_input_size() -> None:
    assert drawing.pen_width(8) == drawing.THICKEST_PEN  # The 8x8 digits: thick strokes.
    assert drawing.pen_width(28) == 20  # MNIST: two of its 28 pixels on a 280-pixel canvas.
    assert drawing.pen_width(224) == drawing.THINNEST_PEN
    with pytest.raises(ValueError, match="got 0"):
        drawing.pen_width(0)


def test_the_canvas_comes_back_as_white_ink_on_black() -> None:
    canvas = np.zeros((280, 280, 4), dtype=np.uint8)
    canvas[..., 3] = 255  # The black background, opaque.
    assert drawing.canvas_to_image(canvas) is None  # Nothing drawn yet.
    assert drawing.canvas_to_image(None) is None
    canvas[100:180, 130:150, :3] = 255  # A white stroke.
    image = drawing.canvas_to_image(canvas)
    assert image is not None and image.mode == "L" and image.size == (280, 280)
    pixels = np.asarray(image)
    assert pixels[140, 140] == 255 and pixels[10, 10] == 0


def test_strokes_on_a_transparent_layer_count_as_ink_on_black() -> None:
    canvas = np.zeros((50, 50, 4), dtype=np.uint8)
    canvas[20:30, 20:30] = (255, 255, 255, 255)  # Opaque white ink; the rest fully transparent.
    canvas[0:5, 0:5, :3] = 255  # White but transparent: background.
    pixels = np.asarray(drawing.canvas_to_image(canvas))
    assert pixels[25, 25] == 255 and pixels[2, 2] == 0

"""Figures of what a model sees and where it looks: overlays, top-k bars and preprocessing steps."""

from __future__ import annotations

import numpy as np
from plotly.colors import sample_colorscale

from cnnlab.figures import inspection


def test_for_display_keeps_small_images_and_shrinks_large_ones_to_rgb() -> None:
    small = np.full((10, 20, 1), 0.5, dtype=np.float32)
    shown = inspection.for_display(small)
    assert shown.shape == (10, 20, 3) and np.allclose(shown, 0.5)
    large = np.ones((448, 224, 3), dtype=np.float32)
    assert inspection.for_display(large).shape == (224, 112, 3)


def test_a_cold_overlay_shows_the_image_in_grey_and_a_hot_one_the_top_colour() -> None:
    image = np.zeros((4, 4, 3), dtype=np.float32)
    image[..., 0] = 0.9
    cold = inspection.overlay(image, np.zeros((4, 4)))
    np.testing.assert_allclose(cold, 0.3, atol=1e-6)  # The mean of (0.9, 0, 0), in grey.
    hot = inspection.overlay(image, np.ones((2, 2)), opacity=1.0)  # Resized to the image.
    top = np.array(sample_colorscale(inspection.HEAT_COLOURSCALE, [1.0], colortype="tuple")[0])
    assert hot.shape == (4, 4, 3)
    np.testing.assert_allclose(hot[0, 0], top, atol=1e-6)


def test_top_k_lists_the_most_probable_classes_first() -> None:
    figure = inspection.top_k(np.array([0.1, 0.6, 0.05, 0.25]), ["a", "b", "c", "d"], k=3)
    (bars,) = figure.data
    assert bars.type == "bar" and bars.orientation == "h"
    assert list(bars.y) == ["b", "d", "a"] and list(bars.x) == [0.6, 0.25, 0.1]
    assert list(bars.text) == ["60.0%", "25.0%", "10.0%"]
    assert figure.layout.title.text == "Top 3 classes"


def test_top_k_reads_one_sigmoid_unit_as_two_classes() -> None:
    figure = inspection.top_k(np.array([0.8]), ["no", "yes"])
    assert list(figure.data[0].y) == ["yes", "no"]
    np.testing.assert_allclose(figure.data[0].x, [0.8, 0.2])


def test_preprocessing_steps_are_titled_in_order_with_their_size() -> None:
    steps = [("decoded", np.zeros((30, 40, 3))), ("resized", np.ones((8, 8, 1)))]
    figure = inspection.preprocessing_steps(steps)
    assert [annotation.text for annotation in figure.layout.annotations] == [
        "1. decoded (40×30)",
        "2. resized (8×8)",
    ]
    assert np.asarray(figure.data[1].z).shape == (8, 8, 3) and np.asarray(figure.data[1].z).min() == 255


def test_explanation_has_three_titled_panels() -> None:
    image = np.zeros((6, 6, 1), dtype=np.float32)
    figure = inspection.explanation(image, np.ones((6, 6)), np.zeros((6, 6)))
    assert len(figure.data) == 3 and all(trace.type == "image" for trace in figure.data)
    assert [annotation.text for annotation in figure.layout.annotations] == [
        "what the model sees",
        "Grad-CAM: where it looked",
        "saliency: pixels that matter",
    ]
    assert np.asarray(figure.data[0].z).max() == 0

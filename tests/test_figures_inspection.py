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
    image = np.zeros((80, 80, 3), dtype=np.float32)  # Large enough to be shown at its own size.
    image[..., 0] = 0.9
    cold = inspection.overlay(image, np.zeros((80, 80)))
    np.testing.assert_allclose(cold, 0.3, atol=1e-6)  # The mean of (0.9, 0, 0), in grey.
    hot = inspection.overlay(image, np.ones((2, 2)), opacity=1.0)  # Resized to the image.
    top = np.array(sample_colorscale(inspection.HEAT_COLOURSCALE, [1.0], colortype="tuple")[0])
    assert hot.shape == (80, 80, 3)
    np.testing.assert_allclose(hot[0, 0], top, atol=1e-6)


def eight_by_eight_bar() -> np.ndarray:
    """An 8x8 input with a bright vertical bar in columns 3 and 4, rows 1 to 6, as the digits are."""
    image = np.zeros((8, 8, 1), dtype=np.float32)
    image[1:7, 3:5] = 1.0
    return image


def test_a_small_input_is_enlarged_with_a_smooth_heat_map_and_its_ink_outlined() -> None:
    image = eight_by_eight_bar()
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[4, 4] = 1.0  # One hot input pixel: a mosaic would show one 24x24 block of one colour.
    factor = inspection.enlargement(8, 8)
    assert factor == inspection.ENLARGED_SIDE // 8 == 24
    shown = inspection.overlay(image, heat, outline=False)
    assert shown.shape == (192, 192, 3)
    # Smooth: inside the hot input pixel the colour changes from its centre to its edge, and the
    # heat spreads beyond it, fading with the distance.
    centre, edge, outside, far = (
        shown[4 * 24 + 12, 4 * 24 + 12],
        shown[4 * 24 + 1, 4 * 24 + 12],
        shown[3 * 24 + 12, 4 * 24 + 12],
        shown[12, 12],
    )
    assert not np.allclose(centre, edge, atol=0.02)
    assert not np.allclose(outside, far, atol=0.02)
    np.testing.assert_allclose(far, 0.0, atol=1e-6)  # Cold and dark: the image itself.
    # The outline follows the bar's edge at the enlarged size: on the bar's border, not inside it,
    # not far from it; nothing outlined where there is no ink.
    outline = inspection.ink_outline(image, factor)
    rows, columns = np.nonzero(outline)
    assert outline.any() and outline.shape == (192, 192)
    assert 2 * 24 < columns.mean() < 6 * 24 and 2 * 24 < rows.mean() < 6 * 24
    assert not outline[4 * 24, 4 * 24]  # The bar's middle is ink, not its outline.
    assert outline[:, : 2 * 24].sum() == 0 and outline[:, 6 * 24 :].sum() == 0
    outlined = inspection.overlay(image, heat)
    np.testing.assert_allclose(outlined[outline], 1.0)  # Drawn in white.
    np.testing.assert_allclose(outlined[~outline], shown[~outline])
    assert not inspection.ink_outline(np.full((8, 8, 1), 0.5, np.float32), factor).any()


def test_gallery_pictures_are_enlarged_bytes_with_their_overlays() -> None:
    images = [eight_by_eight_bar()] * 3
    plain = inspection.gallery_pictures(images)
    assert len(plain) == 3 and plain[0].dtype == np.uint8 and plain[0].shape == (192, 192, 3)
    np.testing.assert_array_equal(plain[0][24 * 4, 24 * 4], [255, 255, 255])  # Square pixels, ink white.
    hot = inspection.gallery_pictures(images, heats=[np.ones((8, 8))] * 3)
    assert hot[0].shape == (192, 192, 3) and not np.array_equal(hot[0], plain[0])
    large = inspection.gallery_pictures([np.zeros((600, 300, 3))], side=260)
    assert large[0].shape == (260, 130, 3)


def test_image_panels_place_titles_above_their_images_row_by_row() -> None:
    figure = inspection.image_panels([np.zeros((4, 4))] * 5, list("abcde"), columns=3, size=100)
    assert len(figure.data) == 5 and figure.layout.height == 2 * (100 + inspection.TITLE_SIZE + 10)
    two_lines = inspection.image_panels(
        [np.zeros((4, 4))], ["a<br>b"], size=100, title_size=12, title_lines=2
    )
    assert two_lines.layout.height == 100 + 2 * 16 + 6
    first, fourth = figure.layout.annotations[0], figure.layout.annotations[3]
    assert first.y == figure.layout.yaxis.domain[1] and first.y > fourth.y
    assert figure.data[3].xaxis == "x4" and figure.layout.xaxis4.domain == figure.layout.xaxis.domain


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
        "1. decoded<br>(40×30)",
        "2. resized<br>(8×8)",
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


def test_every_image_panel_has_a_frame_round_its_edges() -> None:
    """A white image on the white page still shows where it ends: each panel has a grey rectangle
    drawn on its own axes exactly round its pixels."""
    steps = [("decoded", np.ones((40, 30, 1), np.float32)), ("prepared", np.ones((8, 8, 1), np.float32))]
    figure = inspection.preprocessing_steps(steps)
    frames = [shape for shape in figure.layout.shapes if shape.type == "rect"]
    assert len(frames) == len(figure.data) == 2
    for frame, trace in zip(frames, figure.data, strict=True):
        height, width = np.asarray(trace.z).shape[:2]
        assert (frame.xref, frame.yref) == (trace.xaxis, trace.yaxis)
        assert (frame.x0, frame.y0, frame.x1, frame.y1) == (-0.5, -0.5, width - 0.5, height - 0.5)
        assert frame.line.color == inspection.FRAME_COLOUR != "#ffffff" and frame.layer == "above"

"""The Learn page's content: the article's X and written sum, the named kernels, the inputs and
the exercises."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.lesson import arithmetic, content


def test_the_articles_patch_is_written_as_in_the_article() -> None:
    lines = arithmetic.written_sum(content.ARTICLE_PATCH, content.KERNELS["Vertical edge"])
    assert lines[:3] == ("(1×1) + (1×0) + (0×-1)", "(1×1) + (0×0) + (0×-1)", "(0×1) + (0×0) + (0×-1)")
    assert lines[3] == "= 1 + 0 + 0 + 1 + 0 + 0 + 0 + 0 + 0"
    assert lines[4] == f"= {content.ARTICLE_RESULT}"


def test_the_worked_example_is_a_6x6_x_giving_a_4x4_map() -> None:
    image = content.x_image()
    assert image.shape == (6, 6)
    np.testing.assert_array_equal(image, image[::-1])  # An X is symmetric top to bottom ...
    np.testing.assert_array_equal(image, image[:, ::-1])  # ... and left to right.
    assert np.trace(image) == 6
    feature_map = arithmetic.convolve(image, content.KERNELS["Vertical edge"])
    assert feature_map.shape == (4, 4)
    assert arithmetic.step_count(image.shape, (3, 3), 1, "valid") == 16
    assert (
        arithmetic.convolve(content.o_image(), content.KERNELS["Identity"]).tolist()
        == content.o_image()[1:5, 1:5].tolist()
    )


def test_play_wraps_around_and_prediction_is_checked() -> None:
    assert [content.next_step(step, 4) for step in range(4)] == [1, 2, 3, 0]
    assert content.next_step(0, 0) == 0
    assert content.check_prediction((4, 4), (4, 4))
    assert not content.check_prediction((4, 3), (4, 4))


def test_inputs_digits_and_uploaded_images() -> None:
    digit, label = content.digits_sample(0)
    assert digit.shape == (8, 8) and digit.min() >= 0 and digit.max() <= 16 and label == 0
    with pytest.raises(arithmetic.LessonError, match="0 to 1796"):
        content.digits_sample(5000)
    photo = np.full((40, 30, 3), 255, dtype=np.uint8)  # Dark ink on a white page ...
    photo[10:30, 12:18] = 0
    grid = content.image_to_grid(photo, 8)
    assert grid.shape == (8, 8) and grid.max() >= 0.75 and grid[0, 0] == 0.0  # ... becomes light ink on 0.
    assert set(np.round(grid.ravel() * 100) % 1) == {0.0}


def test_every_classic_kernel_is_3x3_with_a_note() -> None:
    assert set(content.KERNELS) == set(content.KERNEL_NOTES)
    assert all(kernel.shape == (3, 3) for kernel in content.KERNELS.values())
    assert content.KERNELS["Blur"].sum() == 1
    vertical = arithmetic.convolve(content.x_image(), content.KERNELS["Vertical edge"])
    assert np.array_equal(vertical, -vertical[:, ::-1])  # Mirroring the symmetric X flips the edges' sign.


def test_the_pooling_comparison_has_one_answer_per_factor() -> None:
    factors = content.POOLING_COMPARISON["Factors"]
    assert list(content.POOLING_COMPARISON) == ["Factors", "Max pooling", "Average pooling"]
    assert all(len(column) == len(factors) for column in content.POOLING_COMPARISON.values())

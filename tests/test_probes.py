"""Pinned probe images: pin, unpin, limits, safe writes and conversion to a model's input."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.data import prepare
from cnnlab.store import probes
from cnnlab.store.run_store import Store

RNG = np.random.default_rng(5)


def image(height: int = 8, width: int = 8, channels: int = 1) -> np.ndarray:
    return RNG.random((height, width, channels), dtype=np.float32)


def test_nothing_is_pinned_at_first(store: Store) -> None:
    assert probes.pinned(store) == []
    assert probes.for_input_shape(store, (8, 8, 1)) is None


def test_pinned_probes_come_back_in_order_and_survive_a_new_store(store: Store) -> None:
    first, second = image(), image(5, 7, 3)
    assert probes.pin(store, first) == 1
    assert probes.pin(store, second) == 2
    again = probes.pinned(Store(store.home))
    assert len(again) == 2
    np.testing.assert_array_equal(again[0], first)
    np.testing.assert_array_equal(again[1], second)
    assert [path.name for path in store.home.iterdir() if path.name.endswith(".npz")] == [probes.FILE_NAME]


def test_the_same_image_is_pinned_once(store: Store) -> None:
    picture = image()
    probes.pin(store, picture)
    assert probes.pin(store, picture + 1e-4) == 1


def test_a_two_dimensional_image_gets_a_channel_and_values_are_clipped(store: Store) -> None:
    probes.pin(store, np.array([[-1.0, 0.5], [2.0, 1.0]]))
    (pinned,) = probes.pinned(store)
    assert pinned.shape == (2, 2, 1)
    assert pinned[..., 0].tolist() == [[0.0, 0.5], [1.0, 1.0]]


def test_at_most_four_probes_can_be_pinned(store: Store) -> None:
    for _ in range(probes.MAX_PROBES):
        probes.pin(store, image())
    with pytest.raises(probes.ProbeError, match=r"4 probes are pinned already.*Unpin one first"):
        probes.pin(store, image())


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((8, 8, 2)), r"got shape \(8, 8, 2\)"),
        (np.zeros((600, 8, 1)), r"at most 512 pixels a side\); got shape \(600, 8, 1\)"),
        (np.zeros((2, 8, 8, 1)), r"got shape \(2, 8, 8, 1\)"),
        (np.full((4, 4), np.nan), "finite pixel values; got NaN or infinity"),
    ],
)
def test_an_image_that_is_not_one_prepared_image_is_refused(
    store: Store, bad: np.ndarray, message: str
) -> None:
    with pytest.raises(probes.ProbeError, match=message):
        probes.pin(store, bad)
    assert probes.pinned(store) == []


def test_unpin_removes_one_and_the_file_with_the_last(store: Store) -> None:
    first, second = image(), image()
    probes.pin(store, first)
    probes.pin(store, second)
    probes.unpin(store, 0)
    (left,) = probes.pinned(store)
    np.testing.assert_array_equal(left, second)
    with pytest.raises(probes.ProbeError, match="There is no pinned probe 2; 1 are pinned"):
        probes.unpin(store, 1)
    probes.unpin(store, 0)
    assert not probes.probes_path(store).exists()


def test_an_unreadable_file_means_no_probes_and_says_so(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    assert probes.unreadable(store) is None
    path = probes.probes_path(store)
    for damage in (b"not an npz file", b"PK\x03\x04 a truncated zip"):
        path.write_bytes(damage)
        with caplog.at_level("WARNING", logger="cnnlab.store.probes"):
            assert probes.pinned(store) == []
        assert f"The pinned probes file {path} cannot be read" in caplog.text
        problem = probes.unreadable(store)
        assert problem is not None and problem.startswith(f"The pinned probes file {path} cannot be read (")
        assert "Pin an image again on the Predict page" in problem
        caplog.clear()
    # Pinning again replaces the damaged file.
    assert probes.pin(store, image(4, 4, 1)) == 1 and probes.unreadable(store) is None


def test_probes_are_converted_to_the_models_input_shape(store: Store) -> None:
    grey, colour = image(16, 16, 1), image(8, 8, 3)
    probes.pin(store, grey)
    probes.pin(store, colour)
    converted = probes.for_input_shape(store, (8, 8, 3))
    assert converted is not None and converted.shape == (2, 8, 8, 3) and converted.dtype == np.float32
    expected = prepare.resize_array(prepare.to_channels(grey, 3), 8, 8)
    np.testing.assert_allclose(converted[0], expected, rtol=1e-6)
    np.testing.assert_allclose(converted[1], colour, rtol=1e-6)

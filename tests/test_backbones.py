"""The stored per-layer table of each backbone equals what Keras builds."""

import pytest

from cnnlab.model import backbones


@pytest.mark.parametrize("name", list(backbones.BACKBONES))
def test_stored_layer_table_matches_keras(name: str) -> None:
    stored = backbones.layer_parameters(name)
    assert list(stored) == backbones.measure_layers(name)
    backbone = backbones.BACKBONES[name]
    assert sum(trainable for trainable, _ in stored) == backbone.trainable_parameters
    assert sum(frozen for _, frozen in stored) == backbone.non_trainable_parameters


def test_fine_tuning_counts_only_the_last_layers() -> None:
    trainable, frozen = backbones.fine_tuned_parameters("VGG16", 4)
    # The last four layers: block5_conv1 to block5_conv3 (3 x 3 x 512 x 512 + 512 each) and block5_pool.
    assert trainable == 3 * (3 * 3 * 512 * 512 + 512)
    assert trainable + frozen == 14_714_688
    assert backbones.fine_tuned_parameters("VGG16", 0) == (0, 14_714_688)

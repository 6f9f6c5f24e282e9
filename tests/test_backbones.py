"""The stored per-layer table of each backbone equals what Keras builds."""

import json
from pathlib import Path

import pytest

from cnnlab.model import backbones, build


@pytest.mark.parametrize("name", list(backbones.BACKBONES))
def test_stored_layer_table_matches_keras(name: str) -> None:
    stored = backbones.layer_parameters(name)
    assert list(stored) == build.measure_backbone_layers(name)
    backbone = backbones.BACKBONES[name]
    assert sum(trainable for trainable, _ in stored) == backbone.trainable_parameters
    assert sum(frozen for _, frozen in stored) == backbone.non_trainable_parameters


def test_fine_tuning_counts_only_the_last_layers() -> None:
    vgg16 = backbones.BACKBONES["VGG16"]
    total = vgg16.trainable_parameters + vgg16.non_trainable_parameters
    trainable, frozen = backbones.fine_tuned_parameters("VGG16", 4)
    # The last four layers: block5_conv1 to block5_conv3 (3 x 3 x 512 x 512 + 512 each) and block5_pool.
    assert trainable == 3 * (3 * 3 * 512 * 512 + 512)
    assert trainable + frozen == total
    assert backbones.fine_tuned_parameters("VGG16", 0) == (0, total)
    assert backbones.fine_tuned_parameters("VGG16", 1, pooled=True) == (0, total)


def test_the_table_writer_writes_what_the_reader_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backbones, "BACKBONES", {"MobileNetV2": backbones.BACKBONES["MobileNetV2"]})
    path = build.write_backbone_layer_table(tmp_path / backbones.LAYER_TABLE)
    written = json.loads(path.read_text(encoding="utf-8"))
    assert list(written) == ["MobileNetV2"]
    assert tuple(map(tuple, written["MobileNetV2"])) == backbones.layer_parameters("MobileNetV2")

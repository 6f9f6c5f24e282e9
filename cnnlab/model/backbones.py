"""Facts about the pretrained feature extractors, measured from Keras, for pure-Python inference.

Parameter counts come from `keras.applications.<Name>(include_top=False, weights=None)` with 3
input channels (they do not depend on the image size); `tests/test_build.py` checks them against
Keras. The per-layer table behind fine-tuning (`backbone_layers.json`) is written by
`python -m cnnlab.model.build` (the only model module that imports Keras) and checked against
Keras by `tests/test_backbones.py`. The (kernel, stride) paths give the receptive field along each
network's deepest path. The catalogue entries of the backbones, with their parameters, are here
too (`LAYER_TYPES`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from cnnlab.model.parameters import LayerType, Parameter


@dataclass(frozen=True)
class Backbone:
    """Facts about a pretrained feature extractor, measured from Keras (include_top=False)."""

    trainable_parameters: int
    non_trainable_parameters: int
    output_channels: int
    rounding: str  # how each of its five stride-2 steps rounds an odd size: "floor" or "ceil"
    gigaflops_at_224: float  # published multiply-adds at 224x224, times two
    path: tuple[tuple[int, int], ...]  # (kernel, stride) along its deepest path, for the receptive field


def _resnet50_path() -> tuple[tuple[int, int], ...]:
    path = [(7, 2), (3, 2)]
    for stage, blocks in enumerate((3, 4, 6, 3)):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            path += [(1, stride), (3, 1), (1, 1)]
    return tuple(path)


def _inverted_residual_path(stem: int, blocks: Sequence[tuple[int, int, int]]) -> tuple[tuple[int, int], ...]:
    path = [(stem, 2)]
    for kernel, stride, repeats in blocks:
        for repeat in range(repeats):
            path += [(1, 1), (kernel, stride if repeat == 0 else 1), (1, 1)]
    path.append((1, 1))
    return tuple(path)


BACKBONES: dict[str, Backbone] = {
    "VGG16": Backbone(
        14_714_688,
        0,
        512,
        "floor",
        30.9,
        tuple([(3, 1)] * 2 + [(2, 2)] + [(3, 1)] * 2 + [(2, 2)] + ([(3, 1)] * 3 + [(2, 2)]) * 3),
    ),
    "ResNet50": Backbone(23_534_592, 53_120, 2048, "ceil", 8.2, _resnet50_path()),
    "MobileNetV2": Backbone(
        2_223_872,
        34_112,
        1280,
        "ceil",
        0.6,
        _inverted_residual_path(
            3, ((3, 1, 1), (3, 2, 2), (3, 2, 3), (3, 2, 4), (3, 1, 3), (3, 2, 3), (3, 1, 1))
        ),
    ),
    "EfficientNetB0": Backbone(
        4_007_548,
        42_023,
        1280,
        "ceil",
        0.78,
        _inverted_residual_path(
            3, ((3, 1, 1), (3, 2, 2), (5, 2, 2), (3, 2, 3), (5, 1, 3), (5, 2, 4), (3, 1, 1))
        ),
    ),
}
BACKBONE_MINIMUM_SIZE = 32


LAYER_TABLE = "backbone_layers.json"


@functools.cache
def layer_parameters(name: str) -> tuple[tuple[int, int], ...]:
    """The stored per-layer table of backbone `name`: per Keras layer, (parameters that train when the
    layer is unfrozen, the rest). Written by `build.write_backbone_layer_table`; no Keras import."""
    table = json.loads(resources.files("cnnlab.model").joinpath(LAYER_TABLE).read_text(encoding="utf-8"))
    return tuple((trainable, frozen) for trainable, frozen in table[name])


def fine_tuned_parameters(name: str, last_layers: int, pooled: bool = False) -> tuple[int, int]:
    """(trainable, non-trainable) parameters when only the last `last_layers` layers of a frozen
    backbone train, as Keras counts them. With `pooled`, the backbone ends with its global pooling
    layer (no weights), which counts as one of the last layers."""
    layers = layer_parameters(name) + (((0, 0),) if pooled else ())
    chosen = layers[len(layers) - min(last_layers, len(layers)) :] if last_layers > 0 else ()
    trainable = sum(trainable for trainable, _ in chosen)
    total = sum(trainable + frozen for trainable, frozen in layers)
    return trainable, total - trainable


WEIGHTS = ("imagenet", None)
POOLING = (None, "avg", "max")


def _layer_type(name: str, summary: str) -> LayerType:
    """The catalogue entry of backbone `name`: weights, freezing, fine-tuning and pooling."""
    return LayerType(
        name,
        "backbone",
        summary,
        (
            Parameter(
                "weights",
                "choice",
                "imagenet",
                "imagenet: start from features learned on 1.4 million photos (downloaded once); "
                "none: random start.",
                choices=WEIGHTS,
            ),
            Parameter(
                "trainable",
                "bool",
                False,
                "Frozen (off) keeps the pretrained features; on fine-tunes them (slower, needs more data).",
            ),
            Parameter(
                "fine_tune_layers",
                "int",
                0,
                "With the backbone frozen, train only its last N layers: fine-tuning the highest, most "
                "task-specific features once you have enough data (0 keeps it all frozen).",
                minimum=0,
                maximum=300,
            ),
            Parameter(
                "pooling",
                "choice",
                None,
                "none keeps the feature map; avg or max reduce it to one vector per image.",
                choices=POOLING,
            ),
        ),
        backbone=True,
    )


LAYER_TYPES = (
    _layer_type("VGG16", "Pretrained VGG16 feature extractor (13 conv layers): simple and large."),
    _layer_type("ResNet50", "Pretrained ResNet50 feature extractor: 50 layers with shortcut connections."),
    _layer_type("MobileNetV2", "Pretrained MobileNetV2 feature extractor: small and fast, made for phones."),
    _layer_type("EfficientNetB0", "Pretrained EfficientNetB0 feature extractor: accurate for its size."),
)

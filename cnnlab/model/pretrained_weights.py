"""Whether the ImageNet weights a model's backbones start from are on this machine.

Keras downloads a backbone's weights once into `$KERAS_HOME/models` (default `~/.keras/models`)
and reads them from there afterwards; offline, a missing file fails the run when it starts. This
module names the file each backbone needs, as `keras.applications` names it, and looks for it
without importing TensorFlow, so the Model page can say so before training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnlab.data.keras_cache import keras_home
from cnnlab.model import shapes
from cnnlab.model.backbones import BACKBONES
from cnnlab.specs import ModelSpec

# The input sizes MobileNetV2 has ImageNet weights for; any other size loads the 224 weights.
MOBILENET_SIZES = (96, 128, 160, 192, 224)


@dataclass(frozen=True)
class MissingWeights:
    """A backbone layer whose ImageNet weights file is not in the Keras cache."""

    layer: int  # 1-based, as the Model page numbers layers
    backbone: str
    file_name: str
    folder: Path

    @property
    def message(self) -> str:
        """What is missing, where it goes, and the way around it."""
        return (
            f"Layer {self.layer} ({self.backbone}) starts from ImageNet weights, which are not on this machine: "
            f"{self.file_name} is not in {self.folder}. Training downloads it once when the server is online; "
            "offline, place the file there, or set the layer's weights to none to start from random weights."
        )


def models_folder() -> Path:
    """Where Keras keeps downloaded weights: `$KERAS_HOME/models`."""
    return keras_home() / "models"


def weights_file(backbone: str, input_shape: Sequence[int]) -> str:
    """The file name `keras.applications.<backbone>(include_top=False, weights="imagenet")` loads."""
    if backbone == "VGG16":
        return "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if backbone == "ResNet50":
        return "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if backbone == "MobileNetV2":
        height, width = int(input_shape[0]), int(input_shape[1])
        rows = height if height == width and height in MOBILENET_SIZES else 224
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
    if backbone == "EfficientNetB0":
        return "efficientnetb0_notop.h5"
    raise ValueError(f"No ImageNet weights file is known for {backbone!r}")


def missing(spec: ModelSpec) -> list[MissingWeights]:
    """Every backbone layer of `spec` whose ImageNet weights are not in the Keras cache."""
    rows = shapes.analyse(spec).rows
    inputs = {1: tuple(spec.input_shape)} | {row.index + 1: row.output_shape for row in rows}
    folder = models_folder()
    found = []
    for position, layer in enumerate(spec.layers, 1):
        if layer.type not in BACKBONES or layer.get("weights", "imagenet") != "imagenet":
            continue
        shape = inputs.get(position, tuple(spec.input_shape))
        file_name = weights_file(layer.type, shape)
        if not (folder / file_name).is_file():
            found.append(MissingWeights(position, layer.type, file_name, folder))
    return found

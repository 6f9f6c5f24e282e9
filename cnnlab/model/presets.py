"""Named architectures: every model of the seed articles, LeNet-5, and a default for 8x8 digits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cnnlab import articles
from cnnlab.errors import SpecError
from cnnlab.model import catalogue, shapes
from cnnlab.specs import LayerSpec, ModelSpec, TrainingSettings

DEFAULT_PRESET = "digits_default"


@dataclass(frozen=True)
class Preset:
    """An architecture with a title, a short description, where it comes from and its spec."""

    name: str
    title: str
    description: str
    source: str
    spec: ModelSpec
    suggested_dataset: str
    training: Mapping[str, Any] = field(default_factory=dict)  # the settings its article trained with

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The input shape (height, width, channels) the architecture was written for."""
        return self.spec.input_shape


def _conv(filters: int, **params: Any) -> dict[str, Any]:
    return {"type": "Conv2D", "filters": filters, "kernel_size": [3, 3], "activation": "relu", **params}


def _pool(size: int = 2) -> dict[str, Any]:
    return {"type": "MaxPooling2D", "pool_size": [size, size]}


def _dense(units: int, activation: str = "relu") -> dict[str, Any]:
    return {"type": "Dense", "units": units, "activation": activation}


FLATTEN = {"type": "Flatten"}

# Real drawings are off-centre, slanted, thicker or thinner than the 1,797 scanned digits; shifting,
# rotating and zooming each training image a little makes a small model robust to that, at no cost
# in test accuracy (`benchmarks/digits_accuracy.py`).
DIGITS_AUGMENTATION: Mapping[str, float] = {"rotation": 0.04, "translation": 0.1, "zoom": 0.1}
BATCH_NORM = {"type": "BatchNormalization"}


def _dropout(rate: float) -> dict[str, Any]:
    return {"type": "Dropout", "rate": rate}


def _spec(name: str, input_shape: list[int], layers: list[dict[str, Any]]) -> ModelSpec:
    return ModelSpec.from_dict({"name": name, "input_shape": input_shape, "layers": layers})


_MINIMAL_MNIST = [_conv(32), _pool(), _conv(64), _pool(), FLATTEN, _dense(10, "softmax")]


def _frozen_vgg16(output: dict[str, Any]) -> list[dict[str, Any]]:
    """The seeds' transfer-learning model: a frozen ImageNet VGG16, Flatten, Dense(256), Dropout(0.5)."""
    return [
        {"type": "VGG16", "weights": "imagenet", "trainable": False},
        FLATTEN,
        _dense(256),
        _dropout(0.5),
        output,
    ]


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "digits_default",
            "Digits CNN (default)",
            "Two small 3x3 conv layers with 'same' padding, one pooling step, dropout and a dense "
            "head, tuned for the built-in 8x8 handwritten digits.",
            "CNN Lab",
            _spec(
                "digits_default",
                [8, 8, 1],
                [
                    _conv(32, padding="same"),
                    _conv(64, padding="same"),
                    _pool(),
                    _dropout(0.25),
                    FLATTEN,
                    _dense(128),
                    _dropout(0.5),
                    _dense(10, "softmax"),
                ],
            ),
            "digits",
            training={"epochs": 40, "augmentation": DIGITS_AUGMENTATION},
        ),
        Preset(
            "mnist_minimal",
            "Minimal MNIST CNN",
            "Two conv + max-pool blocks and a softmax output: the classic first CNN (34,826 parameters).",
            articles.cite("000", "002"),
            _spec("mnist_minimal", [28, 28, 1], _MINIMAL_MNIST),
            "mnist",
            training={"epochs": 5, "batch_size": 64},
        ),
        Preset(
            "mnist_dropout",
            "Minimal MNIST CNN with Dropout",
            "The minimal MNIST CNN with Dropout(0.5) before the output layer, to reduce overfitting.",
            articles.cite("002"),
            _spec("mnist_dropout", [28, 28, 1], [*_MINIMAL_MNIST[:5], _dropout(0.5), _dense(10, "softmax")]),
            "mnist",
        ),
        Preset(
            "mnist_simple",
            "Simple MNIST CNN",
            "One conv layer, one pooling layer, and two dense layers (100 units, then 10 classes).",
            articles.cite("003"),
            _spec(
                "mnist_simple", [28, 28, 1], [_conv(32), _pool(), FLATTEN, _dense(100), _dense(10, "softmax")]
            ),
            "mnist",
        ),
        Preset(
            "mnist_three_conv",
            "Three-conv MNIST CNN",
            "Three conv layers (32, 64, 64 filters) with pooling between, then Dense(64) and the output.",
            articles.cite("003"),
            _spec(
                "mnist_three_conv",
                [28, 28, 1],
                [
                    _conv(32),
                    _pool(),
                    _conv(64),
                    _pool(),
                    _conv(64),
                    FLATTEN,
                    _dense(64),
                    _dense(10, "softmax"),
                ],
            ),
            "mnist",
            training={"epochs": 5, "batch_size": 64},
        ),
        Preset(
            "lenet5",
            "LeNet-5",
            "LeCun's 1998 digit reader: 5x5 tanh convolutions with average pooling, then 120-84-10 dense layers.",
            "LeCun et al., 1998",
            _spec(
                "lenet5",
                [28, 28, 1],
                [
                    {
                        "type": "Conv2D",
                        "filters": 6,
                        "kernel_size": 5,
                        "padding": "same",
                        "activation": "tanh",
                    },
                    {"type": "AveragePooling2D", "pool_size": 2},
                    {"type": "Conv2D", "filters": 16, "kernel_size": 5, "activation": "tanh"},
                    {"type": "AveragePooling2D", "pool_size": 2},
                    FLATTEN,
                    _dense(120, "tanh"),
                    _dense(84, "tanh"),
                    _dense(10, "softmax"),
                ],
            ),
            "mnist",
        ),
        Preset(
            "cifar10",
            "CIFAR-10 CNN",
            "Three conv layers (32, 64, 64) with pooling, Dense(64) and a 10-class softmax for 32x32 colour photos "
            "(122,570 parameters).",
            articles.cite("001"),
            _spec(
                "cifar10",
                [32, 32, 3],
                [
                    _conv(32),
                    _pool(),
                    _conv(64),
                    _pool(),
                    _conv(64),
                    FLATTEN,
                    _dense(64),
                    _dense(10, "softmax"),
                ],
            ),
            "cifar10",
            training={"epochs": 10},
        ),
        Preset(
            "batchnorm_64",
            "64x64 colour CNN with BatchNorm",
            "Four 'same'-padded conv layers, each followed by BatchNormalization, two pooling steps and Dropout(0.5).",
            articles.cite("002"),
            _spec(
                "batchnorm_64",
                [64, 64, 3],
                [
                    _conv(32, padding="same"),
                    BATCH_NORM,
                    _conv(32, padding="same"),
                    BATCH_NORM,
                    _pool(),
                    _conv(64, padding="same"),
                    BATCH_NORM,
                    _conv(64, padding="same"),
                    BATCH_NORM,
                    _pool(),
                    FLATTEN,
                    _dropout(0.5),
                    _dense(10, "softmax"),
                ],
            ),
            "cifar10",
        ),
        Preset(
            "batchnorm_dropout_150",
            "150x150 binary CNN with BatchNorm and Dropout",
            "Two conv blocks with BatchNormalization and Dropout(0.25), Dense(512), and one sigmoid output "
            "for a two-class task.",
            articles.cite("003"),
            _spec(
                "batchnorm_dropout_150",
                [150, 150, 3],
                [
                    _conv(32),
                    BATCH_NORM,
                    _pool(),
                    _dropout(0.25),
                    _conv(64),
                    BATCH_NORM,
                    _pool(),
                    _dropout(0.25),
                    FLATTEN,
                    _dense(512),
                    BATCH_NORM,
                    _dropout(0.5),
                    _dense(1, "sigmoid"),
                ],
            ),
            "shapes",
        ),
        Preset(
            "augmented_binary_64",
            "64x64 binary CNN with augmentation",
            "One conv block and a sigmoid output, trained with random rotations, shifts and flips.",
            articles.cite("000"),
            _spec(
                "augmented_binary_64",
                [64, 64, 3],
                [
                    {"type": "RandomRotation", "factor": 0.055},
                    {"type": "RandomTranslation", "height_factor": 0.1, "width_factor": 0.1},
                    {"type": "RandomFlip", "mode": "horizontal"},
                    _conv(32),
                    _pool(),
                    FLATTEN,
                    _dense(1, "sigmoid"),
                ],
            ),
            "shapes",
            training={"epochs": 10, "batch_size": 32},
        ),
        Preset(
            "spectrogram_audio",
            "Spectrogram audio classifier",
            "Two conv blocks over 64x64 grey spectrograms, Dense(64) and 3 classes (music, speech, silence).",
            articles.cite("003"),
            _spec(
                "spectrogram_audio",
                [64, 64, 1],
                [_conv(32), _pool(), _conv(64), _pool(), FLATTEN, _dense(64), _dense(3, "softmax")],
            ),
            "shapes",
        ),
        Preset(
            "vgg16_transfer",
            "VGG16 transfer learning",
            "A frozen, ImageNet-pretrained VGG16 base with a new Flatten-Dense(256)-Dropout(0.5) head for your own "
            "class folders.",
            articles.cite("000"),
            _spec(
                "vgg16_transfer",
                [128, 128, 3],
                _frozen_vgg16(_dense(2, "softmax")),
            ),
            "folder",
            training={"epochs": 10},
        ),
        Preset(
            "vgg16_finetune_binary",
            "VGG16 fine-tuning (binary)",
            "A frozen VGG16 base at 224x224 with a Dense(256) head and one sigmoid output, trained with RMSprop "
            "at a small learning rate (2e-5).",
            articles.cite("003"),
            _spec(
                "vgg16_finetune_binary",
                [224, 224, 3],
                _frozen_vgg16(_dense(1, "sigmoid")),
            ),
            "folder",
            training={"optimizer": "rmsprop", "learning_rate": 2e-5, "epochs": 5},
        ),
    )
}


def get(name: str) -> Preset:
    """The preset called `name`; SpecError listing the names otherwise."""
    if name not in PRESETS:
        raise SpecError(f"No preset called {name!r}. Presets: {', '.join(PRESETS)}.")
    return PRESETS[name]


def adapt(spec: ModelSpec, input_shape: tuple[int, int, int], num_classes: int) -> ModelSpec:
    """The spec fitted to a dataset: its input shape, and a last Dense layer with one unit per class.

    A one-unit sigmoid output is kept for two classes; otherwise the last Dense layer gets
    `num_classes` units and softmax.
    """
    layers = list(spec.layers)
    for position in range(len(layers) - 1, -1, -1):
        layer = layers[position]
        if layer.type != "Dense":
            continue
        binary = layer.get("units") == 1 and layer.get("activation") == "sigmoid" and num_classes == 2
        if not binary:
            layers[position] = layer.with_params(units=num_classes, activation="softmax")
        break
    return ModelSpec(input_shape, tuple(layers), spec.name)


def new_layer(type_name: str) -> LayerSpec:
    """A layer of `type_name` with the catalogue's starting values."""
    return LayerSpec(type_name, catalogue.layer_type(type_name).initial_params())


OPTIMIZER_NAMES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}
AUGMENTATION_WORDS = {"rotation": "turns", "translation": "shifts", "zoom": "zooms", "flip": "flips"}


def training_settings(preset: Preset) -> TrainingSettings:
    """The training settings loading `preset` gives: the defaults, with the ones its article used.

    Nothing is kept from the settings before, so "Digits CNN (default)" restores the defaults
    exactly, whatever another preset set.
    """
    return TrainingSettings(**preset.training)


def describe_setting(name: str, value: Any) -> str:
    """One training setting in plain words: "5 epochs", "batch size 64", "learning rate 2e-05"."""
    if name == "epochs":
        return f"{value} epochs"
    if name == "optimizer":
        return f"the {OPTIMIZER_NAMES.get(str(value), value)} optimizer"
    if name == "learning_rate":
        return f"learning rate {float(value):g}"
    if name == "augmentation":
        # Contrast and shear are nouns already ("random contrast and shear").
        chosen = [
            AUGMENTATION_WORDS.get(str(key), str(key))
            for key, amount in dict(value).items()
            if amount not in (0, "none")
        ]
        listed = ", ".join(chosen[:-1]) + f" and {chosen[-1]}" if len(chosen) > 1 else "".join(chosen)
        return f"random {listed} of the training images"
    return f"{name.replace('_', ' ')} {value}"


def carried_settings(preset: Preset, training: TrainingSettings) -> list[str]:
    """The training settings `preset` carries that `training` still has, in plain words (`describe_setting`)."""
    carried = training_settings(preset)
    return [
        describe_setting(name, value)
        for name, value in preset.training.items()
        if getattr(carried, name) == getattr(training, name)
    ]


def summaries() -> list[tuple[Preset, shapes.Analysis]]:
    """Every preset with its analysis, for listings."""
    return [(preset, shapes.analyse(preset.spec)) for preset in PRESETS.values()]

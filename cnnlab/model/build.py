"""Spec to `keras.Model`: a `keras.Sequential` that starts with a `keras.Input`.

The only module of `cnnlab.model` that imports TensorFlow. It also applies the training-time
`Random*` augmentation layers to a few images for the Data page's preview, so the preview shows
exactly what the network will see, and measures the pretrained backbones layer by layer for the
table `backbones` reads (`python -m cnnlab.model.build` rewrites `backbone_layers.json`).

The layers, their arguments and their names come from `keras_config.layer_calls`, the same
description the exported code is written from.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cnnlab.errors import ArchitectureError, CnnLabError
from cnnlab.model import backbones, keras_config
from cnnlab.specs import AugmentationSettings, ModelSpec, TrainingSettings


class WeightsUnavailable(CnnLabError):
    """Pretrained weights could not be downloaded or found in the Keras cache."""


def regularizer(value: Any) -> keras.regularizers.Regularizer | None:
    """A {"l1": ..., "l2": ...} mapping as a Keras regulariser (None stays None)."""
    if value is None:
        return None
    return keras.regularizers.L1L2(l1=float(value.get("l1", 0.0)), l2=float(value.get("l2", 0.0)))


def _is_weights_failure(error: Exception) -> bool:
    """True for a failed download or an unreadable weights file (what `keras.utils.get_file` and h5py raise)."""
    text = str(error)
    return isinstance(error, OSError) or any(
        marker in text
        for marker in ("URL fetch failure", "Incomplete or corrupted file", "Unable to open file")
    )


def _backbone_error(call: keras_config.KerasCall, error: Exception) -> Exception:
    """The error to raise when Keras cannot construct a backbone: missing weights say where to put them,
    arguments Keras refuses keep Keras's message, anything else is a bug and stays as it was."""
    if call.arguments.get("weights") == "imagenet" and _is_weights_failure(error):
        text = str(error)
        file_name = re.search(r"([\w.-]+\.h5)", text)
        wanted = f"the file {file_name.group(1)}" if file_name else "the weights file"
        # Keras's download message ends in the socket's errno text; the URL is what helps.
        address = re.search(r"URL fetch failure on (\S+?):? ", text)
        cause = f"the download from {address.group(1)} failed" if address else text
        return WeightsUnavailable(
            f"Could not load the ImageNet weights of {call.class_name} ({cause}). CNN Lab downloads "
            f"them once into $KERAS_HOME/models (default ~/.keras/models); offline, place {wanted} "
            "there, or set weights to none to start from random weights."
        )
    if isinstance(error, ValueError):
        arguments = ", ".join(f"{key}={value!r}" for key, value in call.arguments.items())
        return ArchitectureError(
            f"Keras cannot build {call.class_name}({arguments}): {error} Change the backbone's settings "
            "or the model's input shape."
        )
    return error


def _instantiate(call: keras_config.KerasCall) -> keras.layers.Layer:
    if call.module == "applications":
        constructor = getattr(keras.applications, call.class_name)
        try:
            backbone = constructor(**call.arguments)
        except Exception as error:  # Keras raises plain Exception for a failed download; sorted below.
            replacement = _backbone_error(call, error)
            if replacement is error:
                raise
            raise replacement from None
        backbone.trainable = call.trainable or call.fine_tune_layers > 0
        if call.fine_tune_layers:
            for layer in backbone.layers[: -call.fine_tune_layers]:
                layer.trainable = False
        return backbone
    arguments = {
        key: regularizer(value) if key.endswith("_regularizer") else value
        for key, value in call.arguments.items()
    }
    return getattr(keras.layers, call.class_name)(**arguments)


def build_model(spec: ModelSpec, settings: TrainingSettings | None = None) -> keras.Sequential:
    """Build the (uncompiled) Keras model for `spec`.

    With training `settings`, the model is the one trained: augmentation layers first and the
    global L2 penalty on every kernel without its own regulariser. Raises ArchitectureError
    (listing every problem) for a spec that cannot be built.
    """
    effective = keras_config.training_spec(spec, settings)
    layers = [_instantiate(call) for call in keras_config.layer_calls(effective)]
    return keras.Sequential(
        [keras.Input(shape=tuple(effective.input_shape)), *layers], name=_model_name(spec)
    )


def _model_name(spec: ModelSpec) -> str:
    """A Keras-safe model name."""
    return "".join(char if char.isalnum() or char in "_-" else "_" for char in spec.name) or "cnn"


def augmented_examples(
    images: np.ndarray, augmentation: AugmentationSettings, copies: int = 4, seed: int = 0
) -> np.ndarray:
    """`copies` augmented versions of each image, as (len(images), copies, height, width, channels)."""
    layers = keras_config.augmentation_layers(augmentation)
    if not layers:
        return np.repeat(images[:, np.newaxis], copies, axis=1)
    keras.utils.set_random_seed(seed)
    model = build_model(ModelSpec(tuple(images.shape[1:]), tuple(layers), "augmentation"))
    batch = np.repeat(images, copies, axis=0).astype("float32")
    augmented = np.asarray(model(batch, training=True))
    clipped: np.ndarray = np.clip(augmented, 0.0, 1.0).reshape(len(images), copies, *images.shape[1:])
    return clipped


def measure_backbone_layers(name: str) -> list[tuple[int, int]]:
    """Per layer of Keras's backbone `name`: (parameters that train when the layer is unfrozen, the
    rest), measured on random weights (the counts do not depend on the image size)."""
    model = getattr(keras.applications, name)(include_top=False, weights=None, input_shape=(64, 64, 3))
    return [
        (
            sum(math.prod(weight.shape) for weight in layer.trainable_weights),
            sum(math.prod(weight.shape) for weight in layer.non_trainable_weights),
        )
        for layer in model.layers
    ]


def write_backbone_layer_table(path: Path | None = None) -> Path:
    """Measure every backbone with Keras and store the table `backbones.layer_parameters` reads."""
    path = path or Path(backbones.__file__).with_name(backbones.LAYER_TABLE)
    table = {name: measure_backbone_layers(name) for name in backbones.BACKBONES}
    path.write_text(json.dumps(table, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"Wrote {write_backbone_layer_table()}")

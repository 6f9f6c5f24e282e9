"""Spec to `keras.Model`: a `keras.Sequential` that starts with a `keras.Input`.

The only module of `cnnlab.model` that imports TensorFlow. It also applies the training-time
`Random*` augmentation layers to a few images for the Data page's preview, so the preview shows
exactly what the network will see.

The layers, their arguments and their names come from `keras_config.layer_calls`, the same
description the exported code is written from.
"""

from __future__ import annotations

import re
from typing import Any

import keras
import numpy as np

from cnnlab.errors import CnnLabError
from cnnlab.model import keras_config
from cnnlab.specs import AugmentationSettings, ModelSpec, TrainingSettings


class WeightsUnavailable(CnnLabError):
    """Pretrained weights could not be downloaded or found in the Keras cache."""


def regularizer(value: Any) -> keras.regularizers.Regularizer | None:
    """A {"l1": ..., "l2": ...} mapping as a Keras regulariser (None stays None)."""
    if value is None:
        return None
    return keras.regularizers.L1L2(l1=float(value.get("l1", 0.0)), l2=float(value.get("l2", 0.0)))


def _instantiate(call: keras_config.KerasCall) -> keras.layers.Layer:
    if call.module == "applications":
        constructor = getattr(keras.applications, call.class_name)
        try:
            backbone = constructor(**call.arguments)
        except Exception as error:  # Keras raises plain exceptions for failed downloads.
            if call.arguments.get("weights") != "imagenet":
                raise
            file_name = re.search(r"([\w.-]+\.h5)", str(error))
            wanted = f"the file {file_name.group(1)}" if file_name else "the weights file"
            raise WeightsUnavailable(
                f"Could not load the ImageNet weights of {call.class_name} ({error}). CNN Lab downloads "
                f"them once into $KERAS_HOME/models (default ~/.keras/models); offline, place {wanted} "
                "there, or set weights to none to start from random weights."
            ) from None
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
    return np.clip(augmented, 0.0, 1.0).reshape(len(images), copies, *images.shape[1:])

"""Augmentation previews: the training-time `Random*` layers applied to a few images.

Uses the same layers the model trains with (`keras_config.augmentation_layers`), so the preview
shows exactly what the network will see. Imports Keras only when called.
"""

from __future__ import annotations

import numpy as np

from cnnlab import keras_config
from cnnlab.specs import AugmentationSettings, ModelSpec


def augmented_examples(images: np.ndarray, augmentation: AugmentationSettings, copies: int = 4,
                       seed: int = 0) -> np.ndarray:  # fmt: skip
    """`copies` augmented versions of each image, as (len(images), copies, height, width, channels)."""
    layers = keras_config.augmentation_layers(augmentation)
    if not layers:
        return np.repeat(images[:, np.newaxis], copies, axis=1)
    import keras

    from cnnlab import build

    keras.utils.set_random_seed(seed)
    model = build.build_model(ModelSpec(tuple(images.shape[1:]), tuple(layers), "augmentation"))
    batch = np.repeat(images, copies, axis=0).astype("float32")
    augmented = np.asarray(model(batch, training=True))
    return np.clip(augmented, 0.0, 1.0).reshape(len(images), copies, *images.shape[1:])

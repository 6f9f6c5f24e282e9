"""What the network learns, measured once per epoch in arrays small enough to keep for every epoch.

`Telemetry` is made once per training job from the model and the validation data. Per epoch it
returns, ready for `Store.write_snapshot`:

- `kernels`: the kernels of every convolution layer (at most 64 filters of 16 input channels);
- `feature_maps`: the outputs of every convolution and pooling layer for a fixed panel of
  validation images and the user's probe images (at most 16 channels each);
- `predictions`: the panel's and the probes' predicted class probabilities;
- `confusion`: the validation confusion matrix (rows are true classes, columns predictions);
- `histograms`: a 30-bin histogram of every kernel and bias.

It also computes the validation loss and accuracy from the same single pass over the validation
images that gives the confusion matrix, so telemetry adds no second pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

PANEL_SIZE = 12
MAX_PROBES = 4
MAX_FILTERS = 64
MAX_INPUT_CHANNELS = 16
MAX_MAP_CHANNELS = 16
HISTOGRAM_BINS = 30
VALIDATION_BATCH_SIZE = 256
CONVOLUTIONS = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")
POOLINGS = ("MaxPooling2D", "AveragePooling2D")


def choose_panel(labels: np.ndarray, size: int = PANEL_SIZE) -> np.ndarray:
    """Indices of a fixed panel: the first image of each class in turn, up to `size` images."""
    by_class = [list(np.flatnonzero(labels == label)) for label in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < min(size, len(labels)):
        for indices in by_class:
            if indices and len(chosen) < size:
                chosen.append(int(indices.pop(0)))
    return np.array(sorted(chosen), dtype=np.int64)


def losses_and_hits(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image cross-entropy (as Keras computes it from probabilities) and whether each is right."""
    epsilon = keras.config.epsilon()
    if probabilities.shape[-1] == 1:
        chance = np.clip(probabilities[:, 0].astype(np.float64), epsilon, 1 - epsilon)
        losses = -(labels * np.log(chance) + (1 - labels) * np.log(1 - chance))
        return losses, (chance > 0.5).astype(np.int64) == labels
    normalised = probabilities / probabilities.sum(axis=-1, keepdims=True)
    chance = np.clip(normalised[np.arange(len(labels)), labels].astype(np.float64), epsilon, 1 - epsilon)
    return -np.log(chance), probabilities.argmax(axis=-1) == labels


def predicted_classes(probabilities: np.ndarray) -> np.ndarray:
    """The predicted class of each row (a single sigmoid output means class 1 above 0.5)."""
    if probabilities.shape[-1] == 1:
        return (probabilities[:, 0] > 0.5).astype(np.int64)
    return probabilities.argmax(axis=-1)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int32)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


class Telemetry:
    """Per-epoch measurements of one model on fixed validation images (see the module docstring)."""

    def __init__(
        self,
        model: keras.Model,
        x_val: np.ndarray,
        y_val: np.ndarray,
        class_names: Sequence[str],
        probes: np.ndarray | None = None,
    ) -> None:
        self.model = model
        self.x_val, self.y_val = x_val, y_val
        self.class_names = tuple(class_names)
        self.panel_indices = choose_panel(y_val) if len(y_val) else np.zeros(0, np.int64)
        self.probes = self._checked_probes(probes)
        self.convolutions = [layer for layer in model.layers if type(layer).__name__ in CONVOLUTIONS]
        self.map_layers = [layer for layer in model.layers if type(layer).__name__ in CONVOLUTIONS + POOLINGS]
        self._feature_model = (
            keras.Model(model.inputs[0], [layer.output for layer in self.map_layers])
            if self.map_layers
            else None
        )

    def _checked_probes(self, probes: np.ndarray | None) -> np.ndarray:
        shape = tuple(self.model.input_shape[1:])
        if probes is None or len(probes) == 0 or tuple(probes.shape[1:]) != shape:
            return np.zeros((0, *shape), np.float32)
        return probes[:MAX_PROBES].astype(np.float32)

    def panel(self) -> dict[str, np.ndarray]:
        """The panel images (uint8), their labels and validation indices, and the class names."""
        images = self.x_val[self.panel_indices]
        return {
            "images": np.round(np.clip(images, 0, 1) * 255).astype(np.uint8),
            "labels": self.y_val[self.panel_indices],
            "indices": self.panel_indices,
            "class_names": np.array(self.class_names),
            "probes": np.round(np.clip(self.probes, 0, 1) * 255).astype(np.uint8),
        }

    def _inputs(self) -> np.ndarray:
        return np.concatenate([self.x_val[self.panel_indices], self.probes]).astype(np.float32)

    def kernels(self) -> dict[str, np.ndarray]:
        """Each convolution layer's kernel, (height, width, input channels, filters), capped."""
        return {
            layer.name: np.asarray(layer.get_weights()[0])[:, :, :MAX_INPUT_CHANNELS, :MAX_FILTERS]
            for layer in self.convolutions
        }

    def feature_maps(self) -> dict[str, np.ndarray]:
        """Each convolution and pooling layer's output for the panel and probes, (image, h, w, channel)."""
        if self._feature_model is None or len(self._inputs()) == 0:
            return {}
        outputs = self._feature_model(self._inputs(), training=False)
        outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
        return {
            layer.name: keras.ops.convert_to_numpy(output)[..., :MAX_MAP_CHANNELS]
            for layer, output in zip(self.map_layers, outputs, strict=True)
        }

    def histograms(self) -> dict[str, np.ndarray]:
        """For every weight of every layer: `<layer>/<weight>` counts and `<layer>/<weight>.edges`."""
        arrays: dict[str, np.ndarray] = {}
        for layer in self.model.layers:
            for variable in layer.trainable_weights:
                values = np.asarray(variable.numpy()).ravel()
                finite = values[np.isfinite(values)]
                counts, edges = np.histogram(finite if len(finite) else np.zeros(1), bins=HISTOGRAM_BINS)
                key = f"{layer.name}/{variable.name}"
                arrays[key], arrays[f"{key}.edges"] = counts.astype(np.int32), edges
        return arrays

    def validate(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """One pass over the validation images: (val_loss and val_accuracy, the confusion snapshot).

        The loss adds the model's regularisation penalties, as Keras's own validation does.
        """
        if len(self.y_val) == 0:
            return {}, {}
        probabilities = self.model.predict(self.x_val, batch_size=VALIDATION_BATCH_SIZE, verbose=0)
        losses, hits = losses_and_hits(np.asarray(probabilities), self.y_val)
        penalty = float(sum(float(keras.ops.convert_to_numpy(loss)) for loss in self.model.losses))
        metrics = {"val_loss": float(losses.mean()) + penalty, "val_accuracy": float(hits.mean())}
        num_classes = max(len(self.class_names), 2)
        matrix = confusion_matrix(self.y_val, predicted_classes(probabilities), num_classes)
        return metrics, {"matrix": matrix, "class_names": np.array(self.class_names)}

    def predictions(self) -> dict[str, np.ndarray]:
        """The predicted probabilities of the panel (`panel`) and the probes (`probes`)."""
        inputs = self._inputs()
        if len(inputs) == 0:
            return {}
        probabilities = keras.ops.convert_to_numpy(self.model(inputs, training=False))
        count = len(self.panel_indices)
        return {"panel": probabilities[:count], "probes": probabilities[count:]}

    def snapshots(self) -> dict[str, dict[str, np.ndarray]]:
        """Every per-epoch snapshot except the confusion matrix (which `validate` returns)."""
        return {
            "kernels": self.kernels(),
            "feature_maps": self.feature_maps(),
            "predictions": self.predictions(),
            "histograms": self.histograms(),
        }

"""What the network learns, measured once per epoch in arrays small enough to keep for every epoch.

`Telemetry` is made once per training job from the model and the validation data. Per epoch it
returns, ready for `Store.write_snapshot`:

- `kernels`: the kernels of every convolution layer (at most 64 filters of 16 input channels);
- `feature_maps`: the outputs of every convolution and pooling layer for a fixed panel of
  validation images and the user's probe images (at most 16 channels each);
- `predictions`: the panel's and the probes' predicted class probabilities;
- `confusion`: the validation confusion matrix (rows are true classes, columns predictions);
- `histograms`: a 30-bin histogram of every kernel and bias;
- `layer_health` (`cnnlab.runs.views.health`): each layer's gradient norm on one fixed training batch,
  each ReLU layer's share of units that never fire on the validation images, and a histogram of
  each watched layer's activations on the panel.

Two forward passes per epoch, no more: one over the validation images gives the validation loss
and accuracy, the confusion matrix and, in the same pass, the highest output of every ReLU unit
(a unit that never exceeds zero never fires); one over the panel and probe images gives the
feature maps, the panel's predictions and the activation histograms. The gradient norms add one
forward and backward pass over a single batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from cnnlab.runs.views import health
from cnnlab.trained import classification

PANEL_SIZE = 12
MAX_PROBES = 4
MAX_FILTERS = 64
MAX_INPUT_CHANNELS = 16
MAX_MAP_CHANNELS = 16
HISTOGRAM_BINS = 30
VALIDATION_BATCH_SIZE = 256
GRADIENT_BATCH_SIZE = 32  # One fixed batch per epoch is enough to see a gradient vanish or explode.
CONVOLUTIONS = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")
POOLINGS = ("MaxPooling2D", "AveragePooling2D")


def is_relu(layer: keras.layers.Layer) -> bool:
    """True for a `ReLU` layer and a layer whose activation is ReLU (`activation="relu"`)."""
    return type(layer).__name__ == "ReLU" or getattr(layer, "activation", None) is keras.activations.relu


def _highest_per_unit(output: keras.KerasTensor) -> keras.KerasTensor:
    """Each image's highest value of each unit (the last axis): (images, units)."""
    axes = tuple(range(1, len(output.shape) - 1))
    return keras.ops.max(output, axis=axes) if axes else output


def choose_panel(labels: np.ndarray, size: int = PANEL_SIZE) -> np.ndarray:
    """Indices of a fixed panel: the first image of each class in turn, up to `size` images."""
    by_class = [list(np.flatnonzero(labels == label)) for label in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < min(size, len(labels)):
        for indices in by_class:
            if indices and len(chosen) < size:
                chosen.append(int(indices.pop(0)))
    return np.array(sorted(chosen), dtype=np.int64)


class Telemetry:
    """Per-epoch measurements of one model on fixed validation images (see the module docstring)."""

    def __init__(
        self,
        model: keras.Model,
        x_val: np.ndarray,
        y_val: np.ndarray,
        class_names: Sequence[str],
        probes: np.ndarray | None = None,
        gradient_batch: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.model = model
        self.x_val, self.y_val = x_val, y_val
        self.class_names = tuple(class_names)
        self.panel_indices = choose_panel(y_val) if len(y_val) else np.zeros(0, np.int64)
        self.probes = self._checked_probes(probes)
        self.convolutions = [layer for layer in model.layers if type(layer).__name__ in CONVOLUTIONS]
        self.map_layers = [layer for layer in model.layers if type(layer).__name__ in CONVOLUTIONS + POOLINGS]
        self.relu_layers = [layer for layer in model.layers if is_relu(layer)]
        # The fixed batch the gradient norms are measured on: training images if given, else validation.
        images, labels = gradient_batch if gradient_batch is not None else (x_val, y_val)
        self.gradient_batch = (
            images[:GRADIENT_BATCH_SIZE].astype(np.float32),
            labels[:GRADIENT_BATCH_SIZE],
        )
        self.dead_shares: dict[str, float] = {}
        # The watched layers' outputs and the predictions in one pass over the panel and probes.
        self.watched = [
            *self.map_layers,
            *(layer for layer in self.relu_layers if layer not in self.map_layers),
        ]
        self._panel_model = keras.Model(
            model.inputs[0], [*(layer.output for layer in self.watched), model.outputs[0]]
        )
        # The predictions and every ReLU unit's highest output in one pass over the validation images.
        self._validation_model = (
            keras.Model(
                model.inputs[0],
                [model.outputs[0], *(_highest_per_unit(layer.output) for layer in self.relu_layers)],
            )
            if self.relu_layers
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

    def _panel_pass(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One pass over the panel and probes: every watched layer's output, and the probabilities."""
        inputs = self._inputs()
        if len(inputs) == 0:
            return {}, np.zeros((0, *self.model.outputs[0].shape[1:]), np.float32)
        outputs = self._panel_model(inputs, training=False)
        arrays = [keras.ops.convert_to_numpy(output) for output in outputs]
        named = {layer.name: array for layer, array in zip(self.watched, arrays[:-1], strict=True)}
        return named, arrays[-1]

    def _maps_from(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            layer.name: outputs[layer.name][..., :MAX_MAP_CHANNELS] for layer in self.map_layers if outputs
        }

    def _predictions_from(self, probabilities: np.ndarray) -> dict[str, np.ndarray]:
        if len(probabilities) == 0:
            return {}
        count = len(self.panel_indices)
        return {"panel": probabilities[:count], "probes": probabilities[count:]}

    def feature_maps(self) -> dict[str, np.ndarray]:
        """Each convolution and pooling layer's output for the panel and probes, (image, h, w, channel)."""
        return self._maps_from(self._panel_pass()[0])

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

    def gradient_norms(self) -> dict[str, float]:
        """Each layer's gradient norm (all its trainable weights together) on the fixed batch.

        Measured in inference mode (no dropout), so epochs compare like with like; the loss is the
        compiled one, regularisation penalties included.
        """
        import tensorflow as tf  # The gradient tape; the worker runs Keras on TensorFlow.

        images, labels = self.gradient_batch
        weights = self.model.trainable_weights
        if len(images) == 0 or not weights:
            return {}
        with tf.GradientTape() as tape:
            probabilities = self.model(images, training=False)
            loss = self.model.compute_loss(x=images, y=labels, y_pred=probabilities, training=False)
        gradients = dict(zip((id(weight) for weight in weights), tape.gradient(loss, weights), strict=True))
        norms: dict[str, float] = {}
        for layer in self.model.layers:
            squares = [
                float(np.sum(np.square(keras.ops.convert_to_numpy(gradients[id(weight)]))))
                for weight in layer.trainable_weights
                if gradients.get(id(weight)) is not None
            ]
            if squares:
                norms[layer.name] = float(np.sqrt(sum(squares)))
        return norms

    def layer_health(self, outputs: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The `layer_health` snapshot (`cnnlab.runs.views.health`): gradient norms, the dead ReLU shares of
        the last `validate()`, and activation histograms of the panel pass `outputs` (run if None)."""
        if outputs is None:
            outputs = self._panel_pass()[0]
        activation_histograms = {}
        for name, values in outputs.items():
            finite = values[np.isfinite(values)]
            counts, edges = np.histogram(finite if finite.size else np.zeros(1), bins=HISTOGRAM_BINS)
            activation_histograms[name] = (counts, edges)
        return health.health_arrays(self.gradient_norms(), self.dead_shares, activation_histograms)

    def validate(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """One pass over the validation images: (val_loss and val_accuracy, the confusion snapshot).

        The loss adds the model's regularisation penalties, as Keras's own validation does. The
        same pass updates `dead_shares`: for each ReLU layer, the share of its units whose output
        never exceeds zero on any validation image.
        """
        if len(self.y_val) == 0:
            return {}, {}
        if self._validation_model is None:
            probabilities = self.model.predict(self.x_val, batch_size=VALIDATION_BATCH_SIZE, verbose=0)
        else:
            probabilities, *highest = self._validation_model.predict(
                self.x_val, batch_size=VALIDATION_BATCH_SIZE, verbose=0
            )
            self.dead_shares = {
                layer.name: float(np.mean(np.asarray(values).max(axis=0) <= 0))
                for layer, values in zip(self.relu_layers, highest, strict=True)
            }
        probabilities = np.asarray(probabilities)
        losses = classification.cross_entropy(probabilities, self.y_val, keras.config.epsilon())
        predicted = classification.predicted_classes(probabilities)
        penalty = float(sum(float(keras.ops.convert_to_numpy(loss)) for loss in self.model.losses))
        metrics = {
            "val_loss": float(losses.mean()) + penalty,
            "val_accuracy": float((predicted == self.y_val).mean()),
        }
        num_classes = max(len(self.class_names), 2)
        matrix = classification.confusion_matrix(self.y_val, predicted, num_classes)
        return metrics, {"matrix": matrix, "class_names": np.array(self.class_names)}

    def predictions(self) -> dict[str, np.ndarray]:
        """The predicted probabilities of the panel (`panel`) and the probes (`probes`)."""
        return self._predictions_from(self._panel_pass()[1])

    def snapshots(self) -> dict[str, dict[str, np.ndarray]]:
        """Every per-epoch snapshot except the confusion matrix (which `validate` returns).

        Feature maps, predictions and activation histograms come from one pass over the panel.
        """
        outputs, probabilities = self._panel_pass()
        return {
            "kernels": self.kernels(),
            "feature_maps": self._maps_from(outputs),
            "predictions": self._predictions_from(probabilities),
            "histograms": self.histograms(),
            health.KIND: self.layer_health(outputs),
        }

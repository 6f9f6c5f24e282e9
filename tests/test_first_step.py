"""`cnnlab.runs.worker.first_step`: the training step is traced once, and a fit learns exactly as a plain one."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from cnnlab import specs
from cnnlab.runs.worker import first_step, training

SPEC = specs.ModelSpec(
    input_shape=(8, 8, 1),
    layers=(
        specs.LayerSpec("Conv2D", {"filters": 4, "kernel_size": (3, 3), "activation": "relu"}),
        specs.LayerSpec("Dropout", {"rate": 0.25}),
        specs.LayerSpec("Flatten", {}),
        specs.LayerSpec("Dense", {"units": 3, "activation": "softmax"}),
    ),
    name="tiny",
)
SETTINGS = specs.TrainingSettings(epochs=2, batch_size=8, seed=3)


def _data() -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(0)
    return generator.random((24, 8, 8, 1), dtype=np.float32), generator.integers(0, 3, 24)


class _BatchLosses(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.losses.append(float((logs or {})["loss"]))


def _fit(prepared: bool) -> tuple[int, list[float], list[np.ndarray]]:
    """Fit a fresh seeded model; return how often its training step was traced, the batch losses and
    the weights it ends with."""
    images, labels = _data()
    model = training.new_model(SPEC, SETTINGS)
    traces = [0]
    step = model.train_step

    def counted_step(data: Any) -> Any:
        traces[0] += 1  # Python runs while TensorFlow traces, not when the traced step runs.
        return step(data)

    model.train_step = counted_step
    if prepared:
        first_step.build_for_fit(model, images, labels, SETTINGS.batch_size)
    losses = _BatchLosses()
    model.fit(images, labels, batch_size=SETTINGS.batch_size, epochs=2, verbose=0, callbacks=[losses])
    return traces[0], losses.losses, model.get_weights()


def test_a_prepared_fit_traces_its_step_once_and_learns_exactly_as_a_plain_fit() -> None:
    plain_traces, plain_losses, plain_weights = _fit(prepared=False)
    traces, losses, weights = _fit(prepared=True)
    assert plain_traces == 2  # Keras alone builds its state inside the first trace, then traces again.
    assert traces == 1
    assert losses == plain_losses
    for weight, plain_weight in zip(weights, plain_weights, strict=True):
        np.testing.assert_array_equal(weight, plain_weight)


def test_a_model_with_its_state_built_is_left_alone() -> None:
    images, labels = _data()
    model = training.new_model(SPEC, SETTINGS)
    first_step.build_for_fit(model, images, labels, SETTINGS.batch_size)
    variables = [variable.path for variable in model.optimizer.variables]
    first_step.build_for_fit(model, images, labels, SETTINGS.batch_size)
    first_step.build_for_fit(model, images[:0], labels[:0], SETTINGS.batch_size)
    assert model.optimizer.built
    assert [variable.path for variable in model.optimizer.variables] == variables

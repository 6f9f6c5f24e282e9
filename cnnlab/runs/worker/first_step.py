"""What makes a run's first batch arrive sooner: one trace of Keras's training step, and a worker
that has done everything a first run does before the run arrives.

Keras builds the optimizer's slots, the loss tracker and the compiled metrics lazily, inside the
first call of its `tf.function` training step. TensorFlow then sees variables created while
tracing and traces the step a second time, which delays the first batch of every run. `build_for_fit`
creates that state before `fit`, as
Keras itself does when a distribution strategy is set (`Trainer._symbolic_build`), so the step is
traced once. The state is the same either way (zeros and empty trackers): the weights and the
losses of a fit are unchanged, which `tests/test_first_step.py` checks against a plain fit.

`warm_up` is what a warm worker does while it waits for a run (`cnnlab.runs.worker.main`): it reads
the built-in digits into memory, fits a throwaway copy of the default preset (the model Home's
"Train a digits classifier" trains) and takes its pre-training snapshots, so the layers, the
optimizer, the telemetry and TensorFlow's kernels for them have all run once in this process. It
stays short (a run handed over meanwhile waits for it): the validation pass, which a run takes only
after its first batch, is left out.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from cnnlab.data import datasets
from cnnlab.model import build, presets
from cnnlab.runs.worker import telemetry
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings

WARM_UP_IMAGES = 64  # A throwaway fit of two batches is enough to run every code path once.


def build_for_fit(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int) -> None:
    """Create the optimizer, loss and metric state the first training step would, before `fit`.

    A model whose state is built already (a continued run) is left as it is. Keras versions without
    the private `_symbolic_build` fall back to building the optimizer only.
    """
    if len(images) == 0:
        return
    batch = (images[:batch_size], labels[:batch_size])
    symbolic_build = getattr(model, "_symbolic_build", None)
    if callable(symbolic_build):
        symbolic_build(data_batch=batch)
    elif model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def warm_up(compile_model: Callable[[keras.Model, ModelSpec, TrainingSettings], keras.Model]) -> None:
    """Run a first run's whole path once on a throwaway model of the default preset (see the docstring).

    `compile_model` is the training module's, so the warm-up compiles exactly as a run does.
    """
    data = datasets.load(DataSettings())
    spec = presets.get(presets.DEFAULT_PRESET).spec
    settings = TrainingSettings(epochs=1)
    model = compile_model(build.build_model(spec, settings), spec, settings)
    images, labels = data.x_train[:WARM_UP_IMAGES], data.y_train[:WARM_UP_IMAGES]
    batch_size = min(int(settings.batch_size), WARM_UP_IMAGES // 2)
    build_for_fit(model, images, labels, batch_size)
    model.fit(images, labels, batch_size=batch_size, epochs=1, verbose=0)
    # The snapshots a run takes before its first batch; its validation comes after that batch.
    watcher = telemetry.Telemetry(
        model, data.x_val[:WARM_UP_IMAGES], data.y_val[:WARM_UP_IMAGES], data.class_names
    )
    watcher.snapshots()

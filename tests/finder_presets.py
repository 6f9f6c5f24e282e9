"""The learning-rate finder on every preset that fits the default data, at batch sizes 8 to 256.

The nightly test in tests/test_lr_finder.py asserts on these outcomes and
`benchmarks/lr_finder_presets.py` prints them: for each preset and batch size, the range test as the
Train page runs it (in this process), then a short training at the suggested rate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from cnnlab import specs
from cnnlab.data import datasets
from cnnlab.model import presets, shapes
from cnnlab.runs.worker import lr_finder, training

BATCH_SIZES = (8, 32, 64, 256)
SHORT_TRAINING_IMAGES = 1_536  # Enough for a good learning rate to show: 192 batches of 8, 6 of 256...
SHORT_TRAINING_STEPS = 16  # ...but never fewer than 16 batches.


@dataclasses.dataclass(frozen=True)
class PresetOutcome:
    """One range test and, when it suggested a rate, the short training at that rate."""

    preset: str
    batch_size: int
    suggestion: float | None
    reason: str
    lowest_rate_tried: float
    first_loss: float | None = None  # The mean loss of the short training's first quarter of batches.
    last_loss: float | None = None  # Of its last quarter.

    def __str__(self) -> str:
        if self.suggestion is None:
            return f"{self.preset} at batch {self.batch_size}: none: {self.reason}"
        return (
            f"{self.preset} at batch {self.batch_size}: {self.suggestion:.3g}: "
            f"loss {self.first_loss:.3f} -> {self.last_loss:.3f}"
        )


def presets_that_fit_the_default_data(image_shape: tuple[int, int, int], classes: int) -> list[str]:
    """The presets that "Fit it to the current data" loads working on the app's default data (8x8 digits)."""
    return [
        name
        for name, preset in presets.PRESETS.items()
        if shapes.analyse(
            presets.adapt(preset.spec, image_shape, classes),
            num_classes=classes,
            dataset_input_shape=image_shape,
        ).ok
    ]


def short_training(
    spec: specs.ModelSpec, settings: specs.TrainingSettings, images: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """A fresh model trained with `settings` on a few hundred images: (the mean loss of its first
    quarter of batches, of its last quarter)."""
    steps = max(SHORT_TRAINING_STEPS, SHORT_TRAINING_IMAGES // settings.batch_size)
    model = training.new_model(spec, settings)
    order = np.random.default_rng(1).permutation(len(images))
    losses = []
    for step in range(steps):
        chosen = order[np.arange(step * settings.batch_size, (step + 1) * settings.batch_size) % len(order)]
        losses.append(float(model.train_on_batch(images[chosen], labels[chosen], return_dict=True)["loss"]))
    quarter = steps // 4
    return float(np.mean(losses[:quarter])), float(np.mean(losses[-quarter:]))


def every_preset_outcome() -> Iterator[PresetOutcome]:
    """The range test on each preset fitted to the default data at each of `BATCH_SIZES`, then (when
    it suggests a rate) a short training at the suggested rate."""
    data = datasets.load(specs.DataSettings())
    for name in presets_that_fit_the_default_data(data.image_shape, data.num_classes):
        preset = presets.get(name)
        spec = presets.adapt(preset.spec, data.image_shape, data.num_classes)
        for batch_size in BATCH_SIZES:
            settings = specs.TrainingSettings(**{**preset.training, "batch_size": batch_size})
            model = training.new_model(spec, settings)
            result = lr_finder.find_learning_rate(model, data.x_train, data.y_train, batch_size=batch_size)
            found = PresetOutcome(
                name, batch_size, result.suggestion, result.reason, result.learning_rates[0]
            )
            if result.suggestion is None:
                yield found
                continue
            tried = dataclasses.replace(settings, learning_rate=result.suggestion)
            first, last = short_training(spec, tried, data.x_train, data.y_train)
            yield dataclasses.replace(found, first_loss=first, last_loss=last)

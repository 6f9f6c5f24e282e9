"""The learning-rate finder on every preset that fits the default data, at batch sizes 8 to 256.

The nightly test in tests/test_lr_finder.py asserts on these outcomes and
`benchmarks/lr_finder_presets.py` prints them: for each preset and batch size, the range test as the
Train page runs it (in this process), then a short training at the suggested rate.

`held_out_outcomes` does the same on cases the finder's rules were not tuned on: other datasets (the
generated shapes, letter renders in a zip of class folders, both with new seeds), the presets the
tuning left out, and other optimizers. Where it suggests nothing, a short training at the preset's
own learning rate says whether a rate that trains was missed.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cnnlab import specs
from cnnlab.data import datasets
from cnnlab.model import presets, shapes
from cnnlab.runs.worker import lr_finder, training

BATCH_SIZES = (8, 32, 64, 256)
# The presets the rules were not tuned on: those that do not fit the 8x8 digits, small enough to test.
HELD_OUT_PRESETS = (
    "mnist_minimal",
    "mnist_dropout",
    "mnist_three_conv",
    "lenet5",
    "cifar10",
    "batchnorm_dropout_150",
)
HELD_OUT_BATCHES = (
    (16, None),
    (64, "sgd"),
    (64, "rmsprop"),
)  # (batch size, optimizer: None for the preset's)
HELD_OUT_IMAGE_SIZE = 32
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
    dataset: str = "digits"
    optimizer: str = "adam"
    own_rate: float | None = None  # Without a suggestion: the preset's rate, trained at instead.

    @property
    def falls(self) -> bool:
        """True when the short training's loss fell by 5% or more."""
        return (
            self.first_loss is not None
            and self.last_loss is not None
            and self.last_loss < 0.95 * self.first_loss
        )

    def __str__(self) -> str:
        where = f"{self.preset} ({self.optimizer}) on {self.dataset} at batch {self.batch_size}"
        trained = f"loss {self.first_loss:.3f} -> {self.last_loss:.3f}" if self.first_loss is not None else ""
        if self.suggestion is None:
            own = f"; at the preset's {self.own_rate:.3g}: {trained}" if self.own_rate is not None else ""
            return f"{where}: none: {self.reason}{own}"
        return f"{where}: {self.suggestion:.3g}: {trained}"


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


def held_out_data(folder: Path) -> list[tuple[str, datasets.SplitData]]:
    """The held-out datasets, each with its makeup in words: shapes and letter renders, new seeds."""
    from tests import glyph_renders

    shapes_settings = specs.DataSettings(
        dataset="shapes", image_size=HELD_OUT_IMAGE_SIZE, seed=5, options={"count_per_class": 200}
    )
    archive = glyph_renders.write_zip(folder / "glyphs.zip", 150, seed=11)
    glyphs = specs.DataSettings(dataset=str(archive), image_size=HELD_OUT_IMAGE_SIZE)
    return [
        ("shapes (seed 5, 5x200, grey 32x32)", datasets.load(shapes_settings)),
        ("letter renders (zip, seed 11, 5x150, RGB 32x32)", datasets.load(glyphs)),
    ]


def held_out_outcomes() -> Iterator[PresetOutcome]:
    """The range test on the held-out cases (see the module), then a short training at the suggested
    rate, or at the preset's own rate when nothing was suggested."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-finder-held-out-") as folder:
        for makeup, data in held_out_data(Path(folder)):
            for name in HELD_OUT_PRESETS:
                preset = presets.get(name)
                spec = presets.adapt(preset.spec, data.image_shape, data.num_classes)
                for batch_size, optimizer in HELD_OUT_BATCHES:
                    chosen = {**preset.training, "batch_size": batch_size}
                    if optimizer is not None:
                        chosen["optimizer"] = optimizer
                    settings = specs.TrainingSettings(**chosen)
                    model = training.new_model(spec, settings)
                    result = lr_finder.find_learning_rate(
                        model, data.x_train, data.y_train, batch_size=batch_size
                    )
                    found = PresetOutcome(
                        name,
                        batch_size,
                        result.suggestion,
                        result.reason,
                        result.learning_rates[0],
                        dataset=makeup,
                        optimizer=settings.optimizer,
                    )
                    rate = result.suggestion if result.suggestion is not None else settings.learning_rate
                    tried = dataclasses.replace(settings, learning_rate=rate)
                    first, last = short_training(spec, tried, data.x_train, data.y_train)
                    own = None if result.suggestion is not None else settings.learning_rate
                    yield dataclasses.replace(found, first_loss=first, last_loss=last, own_rate=own)


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

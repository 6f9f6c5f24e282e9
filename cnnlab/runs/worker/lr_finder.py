"""The learning-rate finder: the range test of Smith (2015), as fastai's `lr_find` runs it.

On a throw-away copy of the model (the model passed in is untouched), the learning rate grows
exponentially from `START_LEARNING_RATE` to `END_LEARNING_RATE` over `steps_for(batch_size)` batches, one
optimizer step per batch; the batches go round the training images as often as the steps need,
and the test stops early once the smoothed loss explodes. The loss against the learning rate (log
axis) falls, bottoms out and shoots up: a good learning rate lies on the falling slope, before the
bottom.

How the curve is smoothed and what is suggested (or why nothing is) is the server's half,
`cnnlab.runs.queue.learning_rate_range` (`smooth_curve`, `suggest`). That module starts this one as
`python -m cnnlab.runs.worker.lr_finder`, hands it the model spec and settings as JSON on stdin,
and reads the `FinderResult` back from the JSON file it writes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.errors import CnnLabError, RunError
from cnnlab.runs.queue.learning_rate_range import (
    END_LEARNING_RATE,
    EXPLOSION_FACTOR,
    SMOOTHING,
    START_LEARNING_RATE,
    FinderResult,
    smooth_curve,
    steps_for,
    suggest,
)
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings

if TYPE_CHECKING:
    import keras


def find_learning_rate(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int = 32,
    start: float = START_LEARNING_RATE,
    end: float = END_LEARNING_RATE,
    steps: int | None = None,
    seed: int = 0,
) -> FinderResult:
    """Run the range test on a copy of the compiled `model` (its weights and optimizer stay as they are).

    `steps` defaults to `steps_for(batch_size)`: 100 batches, more for batches smaller than 16.
    """
    import keras

    steps = steps_for(batch_size) if steps is None else steps
    started = time.perf_counter()
    trial = keras.models.clone_model(model)
    trial.set_weights(model.get_weights())
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    trial.compile(optimizer=optimizer, loss=model.loss)
    order = np.random.default_rng(seed).permutation(len(images))
    growth = (end / start) ** (1 / max(steps - 1, 1))
    rates: list[float] = []
    losses: list[float] = []
    average, lowest, stopped_early = 0.0, math.inf, False
    for step in range(steps):
        rate = start * growth**step
        trial.optimizer.learning_rate = rate
        chosen = order[np.arange(step * batch_size, (step + 1) * batch_size) % len(order)]
        logs = trial.train_on_batch(images[chosen], labels[chosen], return_dict=True)
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            stopped_early = True
            break
        rates.append(rate)
        losses.append(loss)
        # The one-way average `smooth` computes, kept as it goes.
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        current = average / (1 - SMOOTHING ** (step + 1))
        lowest = min(lowest, current)
        if step > 0 and current > EXPLOSION_FACTOR * lowest:
            stopped_early = True
            break
    if not losses:
        raise RunError(
            f"The learning-rate finder's first batch already gave a loss that is not finite "
            f"(at learning rate {start:g}); check the data and the model's last layer."
        )
    smoothed = smooth_curve(losses)
    classes = max(int(model.output_shape[-1]), 2)  # One sigmoid output tells two classes apart.
    suggested = suggest(rates, losses, smoothed, classes)
    return FinderResult(
        learning_rates=tuple(rates),
        losses=tuple(losses),
        smoothed_losses=tuple(float(value) for value in smoothed),
        suggestion=suggested.learning_rate,
        minimum_learning_rate=suggested.minimum_learning_rate,
        steepest_learning_rate=suggested.steepest_learning_rate,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - started,
        reason=suggested.reason,
        classes=classes,
    )


def find_for_settings(
    spec: ModelSpec, data_settings: DataSettings, training_settings: TrainingSettings
) -> FinderResult:
    """Load the data, build the model as a run would (seeded, compiled), and run the range test on it.

    A model that does not fit the data is refused before TensorFlow is imported: the learner reads
    what to fix at once, not after the import's 4-7 s.
    """
    from cnnlab.data import datasets
    from cnnlab.model import shapes

    data = datasets.load(data_settings)
    shapes.analyse(
        spec, num_classes=data.num_classes, dataset_input_shape=data.image_shape
    ).raise_for_errors()
    from cnnlab.runs.worker import training  # Keras, and so TensorFlow.

    model = training.new_model(spec, training_settings)
    return find_learning_rate(
        model,
        data.x_train,
        data.y_train,
        batch_size=int(training_settings.batch_size),
        seed=int(training_settings.seed),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m cnnlab.runs.worker.lr_finder --output PATH`: read the request (JSON) on stdin, write the answer."""
    parser = argparse.ArgumentParser(
        prog="python -m cnnlab.runs.worker.lr_finder", description="Run the range test."
    )
    parser.add_argument("--output", type=Path, required=True, help="where to write the JSON answer")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads")
    arguments = parser.parse_args(argv)
    from cnnlab.runs.worker import threads

    threads.configure_threads(arguments.threads)
    request = json.loads(sys.stdin.read())
    try:
        result = find_for_settings(
            ModelSpec.from_dict(request["spec"]),
            DataSettings.from_dict(request["data"]),
            TrainingSettings.from_dict(request["training"]),
        )
    except CnnLabError as error:
        arguments.output.write_text(json.dumps({"error": str(error)}), encoding="utf-8")
        return 2
    arguments.output.write_text(json.dumps({"result": result.to_dict()}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

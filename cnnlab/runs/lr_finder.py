"""The learning-rate finder: the range test of Smith (2015), as fastai's `lr_find` runs it.

On a throw-away copy of the model (the model passed in is untouched), the learning rate grows
exponentially from `START_LEARNING_RATE` to `END_LEARNING_RATE` over `STEPS` batches, one
optimizer step per batch; the test stops early once the smoothed loss explodes. The loss
against the learning rate (log axis) falls, bottoms out and shoots up: a good learning rate lies
on the falling slope, before the bottom.

The suggestion is a tenth of the learning rate at the smoothed loss's minimum (fastai's
`lr_min / 10`). The steepest descent (fastai's `steep`) is computed too and returned for the
figure, but not suggested: on the noisy loss of a few small batches its position jumps between
neighbouring dips, while the minimum is stable, and a tenth of it sits on the falling slope where
training is fast and still stable. The curve is smoothed forwards and then backwards (zero
phase): fastai's one-way moving average lags about ten batches, which moves the minimum almost a
decade to the right and made the suggestion up to 14 times the digits preset's 0.001; the
two-way average puts it at 0.001-0.003 for every seed tried. The test still stops on the one-way
average, the only one known while it runs.

Design: the test runs in a worker process, never in the Streamlit server. `find_learning_rate_in_worker`
starts `python -m cnnlab.runs.lr_finder` (a fresh interpreter, like the training workers), hands
it the model spec and settings as JSON, and reads the `FinderResult` back from a JSON file; the
page and the CLI call it and wait (about 10 s on the digits). This module imports TensorFlow only
inside the functions that run in that worker, so the server can import it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import cnnlab
from cnnlab.errors import CnnLabError, RunError
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings

if TYPE_CHECKING:
    import keras

START_LEARNING_RATE = 1e-7  # Far below any useful rate: the loss does not move at first.
END_LEARNING_RATE = 10.0  # Above any useful rate: the loss explodes before the end.
STEPS = 100  # About 100 batches, as fastai: enough points per decade, a few seconds on a CPU.
SMOOTHING = 0.9  # Exponential moving average of the loss (bias-corrected); 0.9 remembers ~10 batches.
EXPLOSION_FACTOR = 4.0  # Stop once the smoothed loss is 4 times its minimum (fastai's rule).
WORKER_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class FinderResult:
    """The range test's curve and its suggestion.

    Attributes:
        learning_rates: The learning rate of each step, growing exponentially.
        losses: The training loss of each step's batch.
        smoothed_losses: `losses` smoothed forwards and backwards (`smooth_both_ways`; the figure plots it).
        suggestion: The suggested learning rate: a tenth of `minimum_learning_rate`.
        minimum_learning_rate: Where the smoothed loss was lowest.
        steepest_learning_rate: Where the smoothed loss fell fastest (per decade), before the minimum.
        stopped_early: True when the loss exploded before `END_LEARNING_RATE`.
        seconds: How long the test took (in the worker, without starting it).
    """

    learning_rates: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed_losses: tuple[float, ...]
    suggestion: float
    minimum_learning_rate: float
    steepest_learning_rate: float
    stopped_early: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinderResult:
        """Read from the JSON form."""
        tuples = {
            name: tuple(float(value) for value in data[name])
            for name in ("learning_rates", "losses", "smoothed_losses")
        }
        return cls(
            **tuples,
            suggestion=float(data["suggestion"]),
            minimum_learning_rate=float(data["minimum_learning_rate"]),
            steepest_learning_rate=float(data["steepest_learning_rate"]),
            stopped_early=bool(data["stopped_early"]),
            seconds=float(data["seconds"]),
        )

    def summary(self) -> str:
        """A few lines for the command line: the suggestion and the curve's landmarks."""
        start, end = self.learning_rates[0], self.learning_rates[-1]
        lowest = min(self.smoothed_losses)
        ending = "exploded" if self.stopped_early else "reached the end"
        return "\n".join(
            [
                f"suggested learning rate: {self.suggestion:.3g} (a tenth of where the loss was lowest)",
                f"lowest smoothed loss {lowest:.4g} at learning rate {self.minimum_learning_rate:.3g}; "
                f"steepest descent at {self.steepest_learning_rate:.3g}",
                f"{len(self.learning_rates)} batches from {start:.3g} to {end:.3g}, the loss {ending}; "
                f"first smoothed loss {self.smoothed_losses[0]:.4g}, last {self.smoothed_losses[-1]:.4g}; "
                f"{self.seconds:.1f} s",
            ]
        )


def smooth(losses: Sequence[float], beta: float = SMOOTHING) -> np.ndarray:
    """The bias-corrected exponential moving average of `losses` (fastai's smoothing)."""
    average, smoothed = 0.0, []
    for step, loss in enumerate(losses, start=1):
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta**step))
    return np.array(smoothed, dtype=np.float64)


def smooth_both_ways(losses: Sequence[float], beta: float = SMOOTHING) -> np.ndarray:
    """`smooth` forwards, then that backwards: a moving average that does not lag behind the curve."""
    return smooth(smooth(losses, beta)[::-1].tolist(), beta)[::-1]


def suggest(
    learning_rates: Sequence[float] | np.ndarray, smoothed_losses: Sequence[float] | np.ndarray
) -> tuple[float, float, float]:
    """(suggestion, minimum's learning rate, steepest descent's learning rate) of a finder curve."""
    rates = np.asarray(learning_rates, dtype=np.float64)
    smoothed = np.asarray(smoothed_losses, dtype=np.float64)
    lowest = int(np.nanargmin(smoothed))
    minimum = float(rates[lowest])
    steepest = minimum
    if lowest >= 2:
        slopes = np.gradient(smoothed[: lowest + 1], np.log10(rates[: lowest + 1]))
        steepest = float(rates[int(np.nanargmin(slopes))])
    return minimum / 10, minimum, steepest


def find_learning_rate(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int = 32,
    start: float = START_LEARNING_RATE,
    end: float = END_LEARNING_RATE,
    steps: int = STEPS,
    seed: int = 0,
) -> FinderResult:
    """Run the range test on a copy of the compiled `model` (its weights and optimizer stay as they are)."""
    import keras

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
    smoothed = smooth_both_ways(losses)
    suggestion, minimum, steepest = suggest(rates, smoothed)
    return FinderResult(
        learning_rates=tuple(rates),
        losses=tuple(losses),
        smoothed_losses=tuple(float(value) for value in smoothed),
        suggestion=suggestion,
        minimum_learning_rate=minimum,
        steepest_learning_rate=steepest,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - started,
    )


def find_for_settings(
    spec: ModelSpec, data_settings: DataSettings, training_settings: TrainingSettings
) -> FinderResult:
    """Load the data, build the model as a run would (seeded, compiled), and run the range test on it."""
    from cnnlab.data import datasets
    from cnnlab.model import shapes
    from cnnlab.runs import training

    data = datasets.load(data_settings)
    shapes.analyse(
        spec, num_classes=data.num_classes, dataset_input_shape=data.image_shape
    ).raise_for_errors()
    model = training.new_model(spec, training_settings)
    return find_learning_rate(
        model,
        data.x_train,
        data.y_train,
        batch_size=int(training_settings.batch_size),
        seed=int(training_settings.seed),
    )


def find_learning_rate_in_worker(
    spec: ModelSpec,
    data_settings: DataSettings,
    training_settings: TrainingSettings,
    *,
    timeout: float = WORKER_TIMEOUT_SECONDS,
) -> FinderResult:
    """Run the range test in a fresh worker process (`python -m cnnlab.runs.lr_finder`) and wait for it.

    Raises the worker's `CnnLabError` message as a `RunError` (for example a dataset that is not
    available), or a `RunError` with the end of its output when it failed otherwise.
    """
    request = {
        "spec": spec.to_dict(),
        "data": data_settings.to_dict(),
        "training": training_settings.to_dict(),
    }
    environment = dict(os.environ)
    package_root = str(Path(cnnlab.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="cnnlab-lr-finder-") as folder:
        output = Path(folder) / "result.json"
        try:
            finished = subprocess.run(
                [sys.executable, "-m", "cnnlab.runs.lr_finder", "--output", str(output)],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                env=environment,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise RunError(
                f"The learning-rate finder did not finish within {timeout:g} s; try a smaller subset."
            ) from None
        answer = json.loads(output.read_text(encoding="utf-8")) if output.exists() else {}
    if "error" in answer:
        raise RunError(str(answer["error"]))
    if finished.returncode != 0 or "result" not in answer:
        tail = (finished.stderr or "").strip().splitlines()[-5:]
        raise RunError(
            f"The learning-rate finder's worker failed (exit code {finished.returncode}): {' / '.join(tail)}"
        )
    return FinderResult.from_dict(answer["result"])


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m cnnlab.runs.lr_finder --output PATH`: read the request (JSON) on stdin, write the answer."""
    parser = argparse.ArgumentParser(
        prog="python -m cnnlab.runs.lr_finder", description="Run the range test."
    )
    parser.add_argument("--output", type=Path, required=True, help="where to write the JSON answer")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads")
    arguments = parser.parse_args(argv)
    from cnnlab.runs import threads

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

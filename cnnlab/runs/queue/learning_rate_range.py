"""The learning-rate range test, as the server sees it: the result, its smoothing and suggestion, and
the worker process that runs it.

The test itself (Smith, 2015, as fastai's `lr_find` runs it) trains in `cnnlab.runs.worker.lr_finder`,
in a fresh interpreter like the training workers; this module starts it and reads its `FinderResult`
back, and imports no TensorFlow, so the Streamlit server and the CLI can use it.

The suggestion is a tenth of the learning rate at the smoothed loss's minimum (fastai's
`lr_min / 10`). The steepest descent (fastai's `steep`) is computed too and returned for the
figure, but not suggested: on the noisy loss of a few small batches its position jumps between
neighbouring dips, while the minimum is stable. The curve is smoothed forwards and then backwards
(zero phase): a one-way moving average lags about ten batches and moves the minimum almost a
decade to the right. The test still stops on the one-way average, the only one known while it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import cnnlab
from cnnlab.errors import RunError
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings

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


def find_learning_rate_in_worker(
    spec: ModelSpec,
    data_settings: DataSettings,
    training_settings: TrainingSettings,
    *,
    timeout: float = WORKER_TIMEOUT_SECONDS,
) -> FinderResult:
    """Run the range test in a fresh worker process (`python -m cnnlab.runs.worker.lr_finder`) and wait for it.

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
                [sys.executable, "-m", "cnnlab.runs.worker.lr_finder", "--output", str(output)],
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

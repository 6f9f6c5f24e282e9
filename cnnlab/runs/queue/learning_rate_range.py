"""The learning-rate range test, as the server sees it: the result, its smoothing and suggestion, and
the worker process that runs it.

The test itself (Smith, 2015, as fastai's `lr_find` runs it) trains in `cnnlab.runs.worker.lr_finder`,
in a fresh interpreter like the training workers; this module starts it and reads its `FinderResult`
back, and imports no TensorFlow, so the Streamlit server and the CLI can use it.

The curve is smoothed forwards and then backwards (zero phase): a one-way moving average lags about
ten batches and moves the minimum almost a decade to the right. The two ways are smoothed apart on
each side of the point where the loss climbs back above its start: smoothed together, the backward
pass carried the explosion (losses of 15 and more) about ten batches to the left, over the whole
dip of a steep, short descent. At batch size 64 on the digits that hid a fall from 2.30 to 0.96
and put the smoothed minimum at the very first batch, so the suggestion was 1e-08.

The suggestion keeps fastai's rule, a tenth of the learning rate at the smoothed minimum, but only
where the smoothed loss has clearly started to fall: when a tenth of the minimum still lies on the
flat start, the suggestion moves up to where the final descent begins. When the smoothed loss never
falls clearly below its start (by `DESCENT_FRACTION` of it and by more than the scatter of single
batches there), nothing is suggested and the result says why.

A fall counts from the lower of the start and the loss of guessing every class equally, ln(classes):
a model that starts far above guessing (a large, untrained head) first falls towards it at learning
rates too small to learn anything, as its outputs shrink towards equal probabilities. On 64x64
renders of five letters, the batchnorm_64 preset started at 3.64 and fell only to 2.95 (ln 5 is
1.61) before the loss exploded; the suggestion was 1.2e-05, at which training stays at chance
(tests/data/finder_curves.json).
"""

from __future__ import annotations

import json
import math
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
STEPS = 100  # About 100 batches, as fastai: about 12 per decade of learning rate.
# Small batches get more steps, so the test sees at least this many images: 100 batches of 8 (800
# images) moved the digits preset's loss too little at any learning rate for a descent to show.
MINIMUM_IMAGES = 1_600
SMOOTHING = 0.9  # Exponential moving average of the loss (bias-corrected); 0.9 remembers ~10 batches.
EXPLOSION_FACTOR = 4.0  # Stop once the smoothed loss is 4 times its minimum (fastai's rule).
STARTING_STEPS = 10  # The first decade (1e-7 to 1e-6), where no optimizer moves the loss: its reference.
MEDIAN_WINDOW = 5  # Batches in the running median that finds where the loss climbs back above its start.
DESCENT_FRACTION = 0.05  # A descent must take the smoothed loss 5% below its start...
CLEAR_FRACTION = 0.1  # ...and the suggestion lies where a tenth of that fall has happened.
WORKER_TIMEOUT_SECONDS = 600.0
STARTUP_SECONDS = 10.0  # A fresh worker: Python, TensorFlow, the data and the model's first step.
SECONDS_PER_STEP = 0.05  # Keras's own cost of one small training step on a busy CPU.
FLOPS_PER_SECOND = 4e9  # What one busy CPU core trains at (a step costs about 3 times the forward pass).


@dataclass(frozen=True)
class FinderResult:
    """The range test's curve and its suggestion.

    Attributes:
        learning_rates: The learning rate of each step, growing exponentially.
        losses: The training loss of each step's batch.
        smoothed_losses: `losses` smoothed forwards and backwards (`smooth_curve`; the figure plots it).
        suggestion: The suggested learning rate, or None when the loss never clearly fell.
        minimum_learning_rate: Where the smoothed loss was lowest.
        steepest_learning_rate: Where the smoothed loss fell fastest (per decade), before the minimum.
        stopped_early: True when the loss exploded before `END_LEARNING_RATE`.
        seconds: How long the test took (in the worker, without starting it).
        reason: Why this suggestion, or why none, in a sentence or two for the learner.
        classes: The classes the model tells apart (2 for one sigmoid output), or 0 when unknown.
    """

    learning_rates: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed_losses: tuple[float, ...]
    suggestion: float | None
    minimum_learning_rate: float
    steepest_learning_rate: float
    stopped_early: bool
    seconds: float
    reason: str = ""
    classes: int = 0

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
        suggestion = data["suggestion"]
        return cls(
            **tuples,
            suggestion=None if suggestion is None else float(suggestion),
            minimum_learning_rate=float(data["minimum_learning_rate"]),
            steepest_learning_rate=float(data["steepest_learning_rate"]),
            stopped_early=bool(data["stopped_early"]),
            seconds=float(data["seconds"]),
            reason=str(data.get("reason", "")),
            classes=int(data.get("classes", 0)),
        )

    def summary(self) -> str:
        """A few lines for the command line: the suggestion (or why none) and the curve's landmarks."""
        start, end = self.learning_rates[0], self.learning_rates[-1]
        lowest = min(self.smoothed_losses)
        ending = "exploded" if self.stopped_early else "reached the end"
        first = (
            "no learning rate suggested"
            if self.suggestion is None
            else f"suggested learning rate: {self.suggestion:.3g}"
        )
        return "\n".join(
            [
                f"{first} ({self.reason})" if self.reason else first,
                f"lowest smoothed loss {lowest:.4g} at learning rate {self.minimum_learning_rate:.3g}; "
                f"steepest descent at {self.steepest_learning_rate:.3g}",
                f"{len(self.learning_rates)} batches from {start:.3g} to {end:.3g}, the loss {ending}; "
                f"first smoothed loss {self.smoothed_losses[0]:.4g}, last {self.smoothed_losses[-1]:.4g}; "
                f"{self.seconds:.1f} s",
            ]
        )


@dataclass(frozen=True)
class Suggestion:
    """What `suggest` reads from a finder curve."""

    learning_rate: float | None  # None when the loss never clearly fell.
    minimum_learning_rate: float
    steepest_learning_rate: float
    reason: str


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


def starting_loss(losses: Sequence[float]) -> float:
    """The loss before any learning: the median of the first `STARTING_STEPS` batches."""
    return float(np.median(np.asarray(losses[:STARTING_STEPS], dtype=np.float64)))


def running_median(losses: Sequence[float], window: int = MEDIAN_WINDOW) -> np.ndarray:
    """The median of each batch's loss and its neighbours (`window` batches, centred; fewer at the ends)."""
    values = np.asarray(losses, dtype=np.float64)
    half = window // 2
    return np.array(
        [np.median(values[max(0, index - half) : index + half + 1]) for index in range(len(values))],
        dtype=np.float64,
    )


def climb_back(losses: Sequence[float]) -> int:
    """The first batch after the loss's lowest point at which it is back above its start (the
    explosion's beginning, by the running median, which a single noisy batch does not move), or the
    number of batches when it never climbs back."""
    if not losses:
        return 0
    medians = running_median(losses)
    lowest = int(np.argmin(medians))
    above = np.nonzero(medians[lowest:] > starting_loss(losses))[0]
    return lowest + int(above[0]) if above.size else len(medians)


def smooth_curve(losses: Sequence[float], beta: float = SMOOTHING) -> np.ndarray:
    """`smooth_both_ways` on each side of `climb_back`: the explosion does not flow back over the descent."""
    cut = climb_back(losses)
    parts = [smooth_both_ways(list(losses[:cut]), beta), smooth_both_ways(list(losses[cut:]), beta)]
    return np.concatenate(parts)


def guessing_loss(classes: int) -> float:
    """The cross-entropy of guessing every one of `classes` equally, ln(classes); infinite when unknown (0)."""
    return math.log(max(classes, 2)) if classes > 0 else math.inf


def _no_descent(
    start: float, reference: float, lowest: float, minimum: float, scatter: float, batches: int
) -> str:
    """Why nothing is suggested, and what to try instead."""
    if reference < start:
        seen = (
            f"the loss started at {start:.3g}, above the loss of guessing every class equally "
            f"({reference:.3g}), and in the test's {batches} batches its smoothed value got down only to "
            f"{lowest:.3g} (at learning rate {minimum:.2g}), not clearly below guessing"
        )
    else:
        seen = (
            f"the loss never fell clearly below where it started ({start:.3g}) in the test's {batches} "
            f"batches: its smoothed value got down to {lowest:.3g} (at learning rate {minimum:.2g}), "
            f"less than {DESCENT_FRACTION:.0%} lower, or within the scatter of single batches ({scatter:.2g})"
        )
    return (
        f"{seen}. The model learns too slowly here for the curve to show a good rate. Keep the learning rate "
        "you have (0.001 is a safe start for Adam; SGD usually needs 0.01 to 0.1), try a larger batch size "
        "or a smaller model (BatchNormalization after the convolutions helps a deep one start), and run "
        "the finder again"
    )


def suggest(
    learning_rates: Sequence[float] | np.ndarray,
    losses: Sequence[float] | np.ndarray,
    smoothed_losses: Sequence[float] | np.ndarray | None = None,
    classes: int = 0,
) -> Suggestion:
    """The suggestion of a finder curve (raw `losses`; `smoothed_losses` defaults to `smooth_curve`)
    for a model telling `classes` apart (0: unknown).

    The suggestion is a tenth of the learning rate at which the smoothed loss reaches its lowest
    level (fastai's `lr_min / 10`; the first batch within `CLEAR_FRACTION` of the fall of the minimum), moved up to where the final descent has clearly begun (the smoothed loss stays `CLEAR_FRACTION`
    of the whole fall below its start from there to the minimum) when a tenth lies before it. None
    when the smoothed loss never falls below its start by `DESCENT_FRACTION` of it and by more than
    the scatter of single batches at the start, where the start is the lower of the first batches'
    loss and the loss of guessing (`guessing_loss(classes)`).
    """
    rates = np.asarray(learning_rates, dtype=np.float64)
    raw = np.asarray(losses, dtype=np.float64)
    smoothed = (
        smooth_curve(raw.tolist())
        if smoothed_losses is None
        else np.asarray(smoothed_losses, dtype=np.float64)
    )
    # The minimum before the loss climbs back: a second dip after an explosion is a broken model.
    cut = max(climb_back(raw.tolist()), 1)
    lowest = int(np.nanargmin(smoothed[:cut]))
    minimum = float(rates[lowest])
    steepest = minimum
    if lowest >= 2:
        slopes = np.gradient(smoothed[: lowest + 1], np.log10(rates[: lowest + 1]))
        steepest = float(rates[int(np.nanargmin(slopes))])
    first = starting_loss(raw.tolist())
    # A fall towards guessing is no learning: the fall counts from the lower of the two.
    start = min(first, guessing_loss(classes))
    scatter = float(np.std(raw[:STARTING_STEPS]))
    fall = start - float(smoothed[lowest])
    if fall < DESCENT_FRACTION * start or fall <= scatter:
        reason = _no_descent(first, start, float(smoothed[lowest]), minimum, scatter, len(raw))
        return Suggestion(None, minimum, steepest, reason)
    # Where the loss reaches its floor: the first batch within a tenth of the fall of the lowest
    # point. On a long, noisy floor the lowest point itself can sit almost anywhere along it.
    floor = int(np.nonzero(smoothed[: lowest + 1] <= smoothed[lowest] + CLEAR_FRACTION * fall)[0][0])
    # Where the final descent begins: after the last batch (before the floor) still near the start.
    near_start = np.nonzero(smoothed[:floor] > start - CLEAR_FRACTION * fall)[0]
    begins = max(int(near_start[-1]) + 1 if near_start.size else 0, STARTING_STEPS, 1)
    begins = min(begins, floor)
    tenth = float(rates[floor]) / 10
    if tenth >= rates[begins]:
        return Suggestion(
            tenth,
            minimum,
            steepest,
            f"a tenth of {rates[floor]:.2g}, the learning rate at which the smoothed loss reached its lowest level",
        )
    reason = (
        f"where the smoothed loss clearly starts to fall; a tenth of where it reached its lowest level "
        f"({tenth:.2g}) is still on the flat start"
    )
    return Suggestion(float(rates[begins]), minimum, steepest, reason)


def steps_for(batch_size: int) -> int:
    """How many batches the range test takes: `STEPS`, or enough to see `MINIMUM_IMAGES` images."""
    return max(STEPS, -(-MINIMUM_IMAGES // max(int(batch_size), 1)))


def expected_seconds(flops_per_image: int, batch_size: int, steps: int | None = None) -> float:
    """About how long the range test takes on this kind of machine, from the start of its worker:
    `STARTUP_SECONDS`, then `steps` training steps of `batch_size` images (forward and backward)."""
    per_step = SECONDS_PER_STEP + 3 * flops_per_image * batch_size / FLOPS_PER_SECOND
    return STARTUP_SECONDS + (steps_for(batch_size) if steps is None else steps) * per_step


def wait_message(flops_per_image: int, batch_size: int) -> str:
    """What the learner reads while the range test runs: what it does and how long it may take.

    `expected_seconds` is a busy machine's time; a quiet one takes about a third of it (the digits
    preset: 6-9 s quiet, 15-38 s with other runs on the same two cores).
    """
    expected = expected_seconds(flops_per_image, batch_size)
    quickest = max(5, round(expected / 3))
    longest = max(20, round(2 * expected / 10) * 10)
    return (
        f"Running the range test in a worker: up to {steps_for(batch_size)} training steps at batch size "
        f"{batch_size}. It takes about {quickest} to {longest} s, the longer when the machine is busy…"
    )


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

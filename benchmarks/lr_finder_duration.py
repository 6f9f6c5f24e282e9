"""How long the learning-rate finder takes on the digits, and what it suggests.

Runs the range test with the digits preset (`digits_default`, its training settings) twice: in
this process (the test alone, TensorFlow already started) and through
`find_learning_rate_in_worker`, the way the Train page and `python -m cnnlab lr-find` run it (a
fresh worker process: starting TensorFlow included).

    python benchmarks/lr_finder_duration.py [--rounds 3]

Prints the seconds and the suggestions; never fails on a timing. Goal (issue 15): under 15 s on
the digits, worker start included.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab import specs
from cnnlab.model import presets
from cnnlab.runs.queue import learning_rate_range
from cnnlab.runs.worker import lr_finder


def shown(suggestion: float | None) -> str:
    """A suggestion as printed: three significant digits, or "none" when the test found no descent."""
    return "none" if suggestion is None else f"{suggestion:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    preset = presets.get("digits_default")
    settings = specs.TrainingSettings(**preset.training)
    data = specs.DataSettings(dataset="digits")
    print(
        f"digits_default on the digits: {settings.optimizer} at {settings.learning_rate:g}, batch {settings.batch_size}"
    )
    here, worker = [], []
    for round_number in range(arguments.rounds):
        seeded = specs.TrainingSettings(**{**preset.training, "seed": round_number})
        result = lr_finder.find_for_settings(preset.spec, data, seeded)
        here.append(result.seconds)
        started = time.perf_counter()
        in_worker = learning_rate_range.find_learning_rate_in_worker(preset.spec, data, seeded)
        worker.append(time.perf_counter() - started)
        print(
            f"  round {round_number + 1} (seed {round_number}): {len(result.learning_rates)} batches, "
            f"{result.seconds:.2f} s here, {worker[-1]:.2f} s in a worker; suggestions "
            f"{shown(result.suggestion)} here, {shown(in_worker.suggestion)} in the worker "
            f"(preset: {settings.learning_rate:g})"
        )
    print(
        f"median: {statistics.median(here):.2f} s for the test, {statistics.median(worker):.2f} s with a worker"
    )


if __name__ == "__main__":
    main()

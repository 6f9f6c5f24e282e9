"""What the learning-rate finder suggests on every preset that fits the digits, at batch sizes 8 to 256.

For each preset fitted to the app's default data and each batch size, runs the range test as the
Train page runs it (in this process), then a short training at the suggested rate, and prints the
suggestion and the loss of the short training's first and last quarter (or why nothing was
suggested). The nightly test
`tests/test_lr_finder.py::test_every_preset_that_fits_the_digits_gets_a_rate_that_trains_or_a_reason_at_every_batch_size`
asserts on the same outcomes (`python -m pytest -m nightly`): the loss falls by 5% or more at every
suggestion, and at most a quarter of them suggest nothing.

    python benchmarks/lr_finder_presets.py

Prints; never fails.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import finder_presets  # After the path is set.


def main() -> None:
    started = time.perf_counter()
    outcomes = []
    for outcome in finder_presets.every_preset_outcome():
        outcomes.append(outcome)
        print(outcome, flush=True)
    trained = [outcome for outcome in outcomes if outcome.suggestion is not None]
    falling = sum(outcome.last_loss < 0.95 * outcome.first_loss for outcome in trained)  # type: ignore[operator]
    print(
        f"{len(outcomes)} range tests, {len(outcomes) - len(trained)} without a suggestion; "
        f"the loss fell by 5% or more after {falling} of {len(trained)} suggestions; "
        f"{time.perf_counter() - started:.0f} s in all"
    )


if __name__ == "__main__":
    main()

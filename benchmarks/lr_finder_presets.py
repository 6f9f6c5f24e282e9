"""What the learning-rate finder suggests on every preset that fits the digits, at batch sizes 8 to 256.

For each preset fitted to the app's default data and each batch size, runs the range test as the
Train page runs it (in this process), then a short training at the suggested rate, and prints the
suggestion and the loss of the short training's first and last quarter (or why nothing was
suggested). The nightly test
`tests/test_lr_finder.py::test_every_preset_that_fits_the_digits_gets_a_rate_that_trains_or_a_reason_at_every_batch_size`
asserts on the same outcomes (`python -m pytest -m nightly`): the loss falls by 5% or more at every
suggestion, and at most a quarter of them suggest nothing.

    python benchmarks/lr_finder_presets.py [--held-out]

`--held-out` runs the cases the finder's rules were not tuned on instead (`tests/finder_presets.py`:
the generated shapes and letter renders with new seeds, the presets that do not fit the digits, SGD and
RMSprop), and where nothing is suggested, a short training at the preset's own rate.

Prints; never fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import finder_presets  # After the path is set.


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", action="store_true", help="the cases the rules were not tuned on")
    arguments = parser.parse_args()
    started = time.perf_counter()
    outcomes = []
    cases = (
        finder_presets.held_out_outcomes() if arguments.held_out else finder_presets.every_preset_outcome()
    )
    for outcome in cases:
        outcomes.append(outcome)
        print(outcome, flush=True)
    trained = [outcome for outcome in outcomes if outcome.suggestion is not None]
    falling = sum(outcome.falls for outcome in trained)
    none = [outcome for outcome in outcomes if outcome.suggestion is None]
    missed = sum(outcome.falls for outcome in none if outcome.own_rate is not None)
    print(
        f"{len(outcomes)} range tests, {len(none)} without a suggestion"
        + (f" ({missed} of them trained at the preset's own rate)" if arguments.held_out else "")
        + f"; the loss fell by 5% or more after {falling} of {len(trained)} suggestions; "
        f"{time.perf_counter() - started:.0f} s in all"
    )


if __name__ == "__main__":
    main()

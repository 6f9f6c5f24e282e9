"""The real-world images (tests/data/real_world) on the default digits model over several training
seeds: how many digits are right, how many are flagged as unlike a digit, how many non-digits are
flagged, and how far each out-of-distribution signal sits from its threshold.

Usage: python benchmarks/real_world.py [--seeds 0 1 2] [--given HOME RUN_ID ...]

Without --given it trains `python -m cnnlab train digits_default --dataset digits --seed S` for each
seed, one at a time at the lowest priority (`nice -n 19`), each in its own temporary home; with
--given (repeatable) it reads those runs instead. The goals of issue 12: every non-digit flagged,
at most 25% of the digits flagged, at least 90% of the digits right. Prints; never asserts.

The margins: for each signal, the digit closest to being flagged by it and the non-digit closest
to escaping it, as signed distances from the threshold (positive: on the right side).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnlab.data import datasets  # noqa: E402  # After the path is set.
from cnnlab.store.run_store import Store  # noqa: E402  # Same.
from cnnlab.trained import calibration as calibrating  # noqa: E402  # Same.
from cnnlab.trained import checkpoints, prediction  # noqa: E402  # Same.

FOLDER = ROOT / "tests" / "data" / "real_world"


def train(seed: int) -> tuple[Path, str]:
    """Train the default digits run with training seed `seed` in a new home; (home, run id)."""
    home = Path(tempfile.mkdtemp(prefix=f"real_world_seed{seed}_"))
    environment = {**os.environ, "CNNLAB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    command = ["nice", "-n", "19", sys.executable, "-m", "cnnlab", "train", "digits_default"]
    command += ["--dataset", "digits", "--seed", str(seed)]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    return home, str(json.loads(completed.stdout.strip().splitlines()[-1])["run_id"])


# Each signal: its name, the threshold, and the signed distance of one prediction from it
# (positive: not flagged by this signal), or None when the signal does not apply to the image.
Reader = Callable[[prediction.Prediction], float | None]
Signal = tuple[str, float, Reader]


def signals(calibration: calibrating.Calibration) -> list[Signal]:
    """The out-of-distribution signals of `prediction.classify`, as distances from their thresholds."""

    def ink(name: str) -> Reader:
        def read(result: prediction.Prediction) -> float | None:
            statistics = result.prepared.ink
            value = None if statistics is None else getattr(statistics, name)
            return None if value is None else float(value)

        return read

    def below(read: Reader, limit: float) -> Reader:
        return lambda result: None if (value := read(result)) is None else limit - value

    def above(read: Reader, limit: float) -> Reader:
        return lambda result: None if (value := read(result)) is None else value - limit

    confidence = calibration.confidence_threshold
    return [
        ("unsure (a note)", confidence, above(lambda result: result.probability, confidence)),
        (
            "ink separation",
            prediction.MIN_INK_SEPARATION,
            above(ink("separation"), prediction.MIN_INK_SEPARATION),
        ),
        ("edge share", prediction.MAX_EDGE_SHARE, below(ink("edge_share"), prediction.MAX_EDGE_SHARE)),
        (
            "chosen share",
            prediction.MIN_CHOSEN_SHARE,
            above(ink("chosen_share"), prediction.MIN_CHOSEN_SHARE),
        ),
        ("border ink", prediction.MAX_BORDER_INK, below(ink("border_ink"), prediction.MAX_BORDER_INK)),
    ]


@dataclasses.dataclass(frozen=True)
class Measured:
    """What one run made of the real-world images."""

    right: int
    digits: int
    digits_flagged: list[str]
    others: int
    others_missed: list[str]
    margins: dict[str, tuple[float, float | None, float | None]]  # threshold, digits, non-digits


def measure(home: Path, run_id: str) -> Measured:
    """Predict the real-world images with the run's best checkpoint, as the real-world test does."""
    store = Store(home)
    checkpoint = checkpoints.find(store, run_id, "best")
    model = checkpoints.load(checkpoint)
    data = datasets.load(store.get_run(run_id).data())
    info = dataclasses.replace(data.info, class_names=tuple(data.class_names))
    calibration = prediction.for_run(checkpoint, model, data)
    files = sorted(FOLDER.glob("*.png"))
    images = [prediction.decode(file.read_bytes()) for file in files]
    results = prediction.predict(model, images, info, calibration, names=[file.stem for file in files])
    digits = [result for result in results if result.name.startswith("digit_")]
    others = [result for result in results if result.name.startswith("nondigit_")]
    margins = {}
    for name, threshold, distance in signals(calibration):
        digit_values = [value for result in digits if (value := distance(result)) is not None]
        other_values = [-value for result in others if (value := distance(result)) is not None]
        margins[name] = (threshold, min(digit_values, default=None), min(other_values, default=None))
    return Measured(
        right=sum(result.class_name == result.name.split("_")[1] for result in digits),
        digits=len(digits),
        digits_flagged=[result.name for result in digits if result.out_of_distribution],
        others=len(others),
        others_missed=[result.name for result in others if result.out_of_distribution is None],
        margins=margins,
    )


def _signed(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:+.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--given", nargs=2, action="append", metavar=("HOME", "RUN_ID"), default=None)
    arguments = parser.parse_args()
    runs = (
        [(f"run {run_id}", Path(home), run_id) for home, run_id in arguments.given]
        if arguments.given
        else [(f"seed {seed}", *train(seed)) for seed in arguments.seeds]
    )
    print("Real-world images on the default digits model (goals: digits right >= 90%, digits flagged <= 25%,")
    print("every non-digit flagged). Margins: the digit nearest to being flagged by a signal, and the")
    print("non-digit nearest to escaping it, as distances from the threshold (positive: on the right side).")
    for label, home, run_id in runs:
        found = measure(home, run_id)
        flagged, caught = len(found.digits_flagged), found.others - len(found.others_missed)
        print(
            f"\n{label} ({home}, run {run_id}): digits right {found.right}/{found.digits} "
            f"({found.right / found.digits:.0%}), digits flagged {flagged}/{found.digits} "
            f"({flagged / found.digits:.0%}), non-digits flagged {caught}/{found.others}"
        )
        if found.digits_flagged:
            print(f"  digits flagged: {', '.join(found.digits_flagged)}")
        if found.others_missed:
            print(f"  non-digits not flagged: {', '.join(found.others_missed)}")
        for name, (threshold, digit_margin, other_margin) in found.margins.items():
            print(
                f"  {name:16s} threshold {threshold:.3f}: digits {_signed(digit_margin)}, "
                f"non-digits {_signed(other_margin)}"
            )


if __name__ == "__main__":
    main()

"""The default digits preset trained through `python -m cnnlab train` with its own settings.

A benchmark-sized run of the test suite's CLI test: the preset's epochs and augmentation (random
shifts, rotations and zooms, which make it robust to real drawings), the same command, the same
worker. Prints the final JSON line's accuracies. Goal: at least 98.5% test accuracy.

    python benchmarks/digits_accuracy.py [--epochs N] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(epochs: int | None, seed: int, home: str) -> dict:
    """One CLI run (the preset's epochs when `epochs` is None); its final JSON line."""
    command = [sys.executable, "-m", "cnnlab", "train", "digits_default", "--dataset", "digits"]
    command += ["--seed", str(seed)] + ([] if epochs is None else ["--epochs", str(epochs)])
    environment = {**os.environ, "CNNLAB_HOME": home, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    if not completed.stdout.strip():
        sys.exit(f"seed {seed}: the CLI printed no result (exit {completed.returncode}):\n{completed.stderr}")
    summary: dict = json.loads(completed.stdout.strip().splitlines()[-1])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's own")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    arguments = parser.parse_args()
    accuracies = []
    with tempfile.TemporaryDirectory() as home:
        for seed in arguments.seeds:
            summary = train(arguments.epochs, seed, home)
            accuracies.append(summary["test_accuracy"])
            print(
                f"seed {seed}: {summary['status']} after {summary['epochs']} epochs; test accuracy "
                f"{summary['test_accuracy']:.4f}, validation {summary['validation_accuracy']:.4f}, "
                f"train {summary['train_accuracy']:.4f}"
            )
    print(
        f"median test accuracy over {len(accuracies)} seeds: {statistics.median(accuracies):.4f} (goal >= 0.985)"
    )


if __name__ == "__main__":
    main()

"""What a script run costs the server's CPU with Streamlit's own step after it (which clears Keras's
session: a full garbage collection and TensorFlow's kernels dropped) against the app's step, which
leaves Keras as it is (`cnnlab.ui.script_runs`).

Usage: python benchmarks/script_run_cleanup.py [--rounds 20] [--page home]

The process first loads a trained digits model and predicts with it, as a server does once a page has
shown a model; then the page (through app.py, in Streamlit's AppTest) runs `rounds` times with each
step, alternately. Prints the median CPU seconds of a run, from the run's start until its step after
it has ended, and their ratio; never asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Time the page's runs with each step and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--page", default="home")
    options = parser.parse_args()
    os.environ.setdefault("CNNLAB_HOME", tempfile.mkdtemp(prefix="cnnlab-cleanup-"))

    import keras
    import numpy as np
    from streamlit.runtime.scriptrunner import script_runner

    from cnnlab.model import build, presets
    from cnnlab.ui import script_runs
    from tests.app_pages import open_page

    model = build.build_model(presets.get("digits_default").spec)
    model.predict(np.zeros((8, *model.input_shape[1:]), "float32"), verbose=0)
    assert "keras" in sys.modules and keras.backend is not None

    steps = {
        "Streamlit's step": script_runs.STREAMLITS_STEP,
        "the app's step": script_runs._clean_problem_modules,
    }
    timed: dict[str, list[float]] = {name: [] for name in steps}
    keep = script_runs.keep_keras_between_runs
    script_runs.keep_keras_between_runs = lambda: None  # type: ignore[assignment]  # The benchmark picks the step.
    try:
        open_page(options.page).run()  # The page's modules imported before timing.
        for _ in range(options.rounds):
            for name, step in steps.items():
                script_runner._clean_problem_modules = step  # type: ignore[attr-defined]
                start = time.process_time()
                open_page(options.page).run()
                timed[name].append(time.process_time() - start)
    finally:
        script_runs.keep_keras_between_runs = keep  # type: ignore[assignment]
    medians = {name: statistics.median(values) for name, values in timed.items()}
    for name, median in medians.items():
        print(
            f"{name}: {median * 1000:.0f} ms of CPU a run of the {options.page} page (median of {options.rounds})"
        )
    ratio = medians["Streamlit's step"] / medians["the app's step"]
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()

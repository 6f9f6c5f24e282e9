"""Predict's server time for an upload: cold (first image), warm (a new image, model loaded), and a
display-only change (the top-k slider), on a digits run.

Usage: python benchmarks/predict_latency.py [--home HOME] [--run RUN_ID] [--rounds 5]

Without --home it trains the default digits CNN for 3 epochs in a temporary home first. The page
runs in Streamlit's AppTest; the time measured is the script's, from its start until Streamlit
reports it finished (the moment the browser sees the page done), without the garbage collection
Streamlit runs after each script. Each row gives the median over the rounds and the process CPU
time, which moves less than the wall time on a busy machine. Goal: a warm upload, including
Grad-CAM, saliency and the top-k, in at most 300 ms. Prints; never asserts a timing.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.run_request import RunRequest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class ScriptClock:
    """Times each script run of AppTest: from its start to its finish event (wall and CPU seconds)."""

    def __init__(self) -> None:
        from streamlit.testing.v1.local_script_runner import LocalScriptRunner

        self.runs: list[tuple[float, float]] = []
        self._start = (0.0, 0.0)
        runner = LocalScriptRunner
        original_run, original_finish = runner._run_script, runner._on_script_finished
        clock = self

        def run_script(self: object, *arguments: object, **keywords: object) -> object:
            clock._start = (time.perf_counter(), time.process_time())
            return original_run(self, *arguments, **keywords)

        def on_finished(self: object, *arguments: object, **keywords: object) -> object:
            result = original_finish(self, *arguments, **keywords)
            clock.runs.append((time.perf_counter() - clock._start[0], time.process_time() - clock._start[1]))
            return result

        for name, function in (("_run_script", run_script), ("_on_script_finished", on_finished)):
            setattr(runner, name, function)  # Instrumentation for the benchmark only.

    def last(self) -> tuple[float, float]:
        """The wall and CPU seconds of the latest script run."""
        return self.runs[-1]


def digit_png(index: int) -> bytes:
    """A real handwritten digit (scikit-learn's), dark on white at 96 pixels, as a photo would be."""
    from sklearn.datasets import load_digits

    pixels = 255 - (load_digits().images[index] * (255 / 16)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((96, 96), Image.Resampling.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue()


def train_run(home: Path) -> str:
    """Train the default digits CNN for 3 epochs in `home`; return the run id."""
    from cnnlab import specs
    from cnnlab.model import presets
    from cnnlab.runs.worker import main as worker
    from cnnlab.runs.worker import training
    from cnnlab.store.run_store import Store
    from cnnlab.store.statuses import Status

    store = Store(home)
    run = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(epochs=3),
            name="predict benchmark",
        )
    )
    store.set_status(run.id, Status.STARTING)
    worker.run_job(run.id, store, training.run)
    return run.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--run", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    home = arguments.home or Path(tempfile.mkdtemp(prefix="predict_benchmark_"))
    os.environ["CNNLAB_HOME"] = str(home)
    run_id = arguments.run or train_run(home)

    from tests.app_pages import open_page

    clock = ScriptClock()
    app = open_page("predict", run_id, timeout=300)
    app.run()
    opened = clock.last()
    rows: dict[str, list[tuple[float, float]]] = {"cold upload": [], "warm upload": [], "top-k slider": []}
    for round_index in range(arguments.rounds + 1):
        image = digit_png(round_index)
        app.file_uploader(key="predict_uploads").set_value((f"digit{round_index}.png", image, "image/png"))
        app.run()
        assert not app.exception, app.exception
        rows["cold upload" if round_index == 0 else "warm upload"].append(clock.last())
        app.slider(key="predict_top_k").set_value(3 + round_index % 2).run()
        rows["top-k slider"].append(clock.last())
    print(f"Predict page, run {run_id} in {home}; server time of one script run, seconds")
    print(f"{'open (model loads)':24s} wall {opened[0]:7.3f}  cpu {opened[1]:7.3f}")
    for name, values in rows.items():
        wall = statistics.median(value[0] for value in values)
        cpu = statistics.median(value[1] for value in values)
        print(f"{name:24s} wall {wall:7.3f}  cpu {cpu:7.3f}  (median of {len(values)})")
    warm = statistics.median(value[0] for value in rows["warm upload"])
    print(f"warm upload: {warm * 1000:.0f} ms against a goal of 300 ms (ratio {warm / 0.3:.2f})")


if __name__ == "__main__":
    main()

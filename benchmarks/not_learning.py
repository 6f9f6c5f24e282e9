"""How often "not learning" fires on runs that go on to learn (false alarms), and how often it stays
silent on runs that never learn (misses): replayed on the recorded curves of a sweep-like set of runs.

Issue 23: on a sweep over a practitioner's own images (5 classes of 64x64 RGB renders) the old rule
fired on 19 of 20 runs at epoch 3, 16 of which went on to learn. This script does two things:

- `record`: trains RUNS short runs once (run it under `nice -n 5`), one thread, on renders of five letters
  (tests/glyph_renders.py, 300 per class, loaded at 32x32 to keep it cheap), with settings drawn as a
  sweep draws them (learning rate log-uniform from 3e-5 to 0.03, first-layer filters 8/16/32, batch size
  16/32/64, Adam or SGD), and writes each run's settings and per-epoch figures to
  tests/data/sweep_curves.json (the fixture tests/test_not_learning_replay.py replays without training);
- `replay` (the default): applies the rule epoch by epoch to those curves, as the worker's callback
  does, and prints false alarms and misses for the old rule (`tests/sweep_curves.old_not_learning`, kept
  for the comparison) and the current one (`cnnlab.runs.views.diagnosis.not_learning`).

`--held-out` records to, and replays, tests/data/sweep_curves_held_out.json instead: runs the rule was
not tuned on, each recorded with its dataset. Record them with other seeds, another dataset
(`--dataset shapes`: the generated shapes, grey, 32x32; `--dataset glyphs --render-seed 7`: new letter
renders in a zip of class folders) and other optimizers (`--optimizers adam rmsprop adamw sgd`: the
first for three runs in four, the others shared among the rest).

A run "learned" when, by its last epoch, its best validation accuracy was at least 20 points above
chance or its training loss was 5% below the loss of guessing (`tests/sweep_curves.RecordedRun.learned`).

Usage: python benchmarks/not_learning.py [record [--runs 20 --epochs 20 --seed S --dataset glyphs|shapes
       --render-seed R --optimizers adam sgd ...]] | [replay [--curves PATH]] [--held-out]
Prints; never asserts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnlab.runs.views import diagnosis  # noqa: E402  # After the path is set.
from tests import sweep_curves  # noqa: E402  # Same.

PER_CLASS = 300
IMAGE_SIZE = 32


def small_cnn(filters: int, image_size: int, classes: int, channels: int = 3) -> dict[str, Any]:
    """The sweep's model in Keras's words: two convolutions (filters, twice that), pooling, a softmax."""
    return {
        "name": f"sweep_cnn_{filters}",
        "input_shape": [image_size, image_size, channels],
        "layers": [
            {"type": "Conv2D", "filters": filters, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Conv2D", "filters": 2 * filters, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "units": classes, "activation": "softmax"},
        ],
    }


def sweep_settings(
    runs: int,
    seed: int = 0,
    lowest: float = 3e-5,
    highest: float = 3e-2,
    optimizers: tuple[str, ...] = ("adam", "sgd"),
) -> list[dict[str, Any]]:
    """`runs` settings drawn as a random sweep draws them (learning rate log-uniform in [lowest, highest];
    the first optimizer three times in four, the others shared among the rest)."""
    import numpy as np

    random = np.random.default_rng(seed)

    def optimizer() -> str:
        if random.uniform() < 0.75 or len(optimizers) == 1:
            return optimizers[0]
        # One optimizer left: no draw, so that the settings of the tuning set stay those recorded.
        return optimizers[1] if len(optimizers) == 2 else str(random.choice(optimizers[1:]))

    return [
        {
            "learning_rate": float(10 ** random.uniform(math.log10(lowest), math.log10(highest))),
            "filters": int(random.choice([8, 16, 32])),
            "batch_size": int(random.choice([16, 32, 64])),
            "optimizer": optimizer(),
        }
        for _ in range(runs)
    ]


def sweep_data(dataset: str, render_seed: int, folder: Path) -> tuple[Any, str]:
    """The split data a recorded set trains on, and its makeup in words: five letters rendered from
    `render_seed` in a zip of class folders, or the generated shapes."""
    from cnnlab import specs
    from cnnlab.data import datasets
    from tests import glyph_renders

    if dataset == "shapes":
        settings = specs.DataSettings(
            dataset="shapes", image_size=IMAGE_SIZE, seed=render_seed, options={"count_per_class": PER_CLASS}
        )
        return datasets.load(
            settings
        ), f"shapes (generated, seed {render_seed}), grey {IMAGE_SIZE}x{IMAGE_SIZE}"
    archive = glyph_renders.write_zip(folder / "glyphs.zip", PER_CLASS, seed=render_seed)
    loaded = datasets.load(specs.DataSettings(dataset=str(archive), image_size=IMAGE_SIZE))
    return loaded, f"glyph renders (zip of class folders, seed {render_seed}), RGB {IMAGE_SIZE}x{IMAGE_SIZE}"


def _keep_first(kept: list[float], batch: int, logs: dict[str, Any]) -> None:
    """Keep the fit's first batch loss in `kept` (the untrained model's, as the worker's `Diagnose` does)."""
    if not kept:
        kept.append(float(logs["loss"]))


def record(
    runs: int,
    epochs: int,
    output: Path,
    seed: int = 0,
    rates: tuple[float, float] = (3e-5, 3e-2),
    dataset: str = "glyphs",
    render_seed: int = 0,
    optimizers: tuple[str, ...] = ("adam", "sgd"),
) -> None:
    """Train each run once and add the settings and per-epoch curves to `output` (JSON; the runs
    already there are kept)."""
    import numpy as np

    from cnnlab.runs.worker import threads

    threads.configure_threads(1)
    import keras

    from cnnlab import specs
    from cnnlab.runs.worker import training

    recorded = []
    with tempfile.TemporaryDirectory(prefix="cnnlab-not-learning-") as folder:
        data, makeup = sweep_data(dataset, render_seed, Path(folder))
        classes = data.num_classes
        chance = float(np.bincount(np.asarray(data.y_train, np.int64)).max() / len(data.y_train))
        for index, chosen in enumerate(sweep_settings(runs, seed, *rates, optimizers=optimizers)):
            channels = int(data.image_shape[-1])
            spec = specs.ModelSpec.from_dict(small_cnn(chosen["filters"], IMAGE_SIZE, classes, channels))
            settings = specs.TrainingSettings(
                optimizer=chosen["optimizer"],
                learning_rate=chosen["learning_rate"],
                batch_size=chosen["batch_size"],
                epochs=epochs,
                seed=seed * 1000 + index,
            )
            model = training.new_model(spec, settings)
            first_losses: list[float] = []
            first_batch = keras.callbacks.LambdaCallback(
                on_train_batch_end=partial(_keep_first, first_losses)
            )
            started = time.perf_counter()
            history = model.fit(
                data.x_train,
                data.y_train,
                validation_data=(data.x_val, data.y_val),
                batch_size=settings.batch_size,
                epochs=epochs,
                verbose=0,
                callbacks=[first_batch],
            ).history
            recorded.append(
                {
                    **chosen,
                    "dataset": makeup,
                    "settings_seed": seed,
                    "classes": classes,
                    "chance_accuracy": round(chance, 5),
                    "training_images": len(data.x_train),
                    "batches_per_epoch": math.ceil(len(data.x_train) / settings.batch_size),
                    "first_loss": first_losses[0],
                    "epochs": [
                        {
                            "epoch": epoch + 1,
                            "loss": round(float(history["loss"][epoch]), 5),
                            "accuracy": round(float(history["accuracy"][epoch]), 5),
                            "val_loss": round(float(history["val_loss"][epoch]), 5),
                            "val_accuracy": round(float(history["val_accuracy"][epoch]), 5),
                        }
                        for epoch in range(epochs)
                    ],
                }
            )
            best = max(history["val_accuracy"])
            print(
                f"run {index + 1:2d}/{runs}: {chosen} best val. accuracy {best:.0%} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    kept = json.loads(output.read_text(encoding="utf-8"))["runs"] if output.exists() else []
    output.write_text(json.dumps({"runs": kept + recorded}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {output}")


def current_not_learning(
    history: list[diagnosis.EpochFigures] | tuple[diagnosis.EpochFigures, ...], facts: diagnosis.RunFacts
) -> diagnosis.Diagnosis | None:
    """The rule as the worker applies it now."""
    return diagnosis.not_learning(history, facts)


def replay(path: Path) -> None:
    """Print each run's outcome and both rules' false alarms and misses, over all runs and per dataset."""
    runs = sweep_curves.load(path)
    print(f"{len(runs)} recorded runs from {path}")
    print(
        f"{'learning rate':>13s} {'opt.':4s} {'filters':>7s} {'batch':>5s} {'best val.':>9s} {'old':>5s} {'new':>5s}"
    )
    for run in runs:
        best = max(figures.val_accuracy or 0.0 for figures in run.history)
        old, new = run.first_alarm(sweep_curves.old_not_learning), run.first_alarm(current_not_learning)
        print(
            f"{run.settings['learning_rate']:13.2e} {run.settings['optimizer']:4s} {run.settings['filters']:7d} "
            f"{run.settings['batch_size']:5d} {best:9.0%} {old or '-':>5} {new or '-':>5}"
            + ("" if run.learned else "  (never learned)")
        )
    makeups = sorted({str(run.settings.get("dataset", "glyph renders (seed 0)")) for run in runs})
    groups = [("all", runs)] + (
        [
            (makeup, [run for run in runs if run.settings.get("dataset", "glyph renders (seed 0)") == makeup])
            for makeup in makeups
        ]
        if len(makeups) > 1
        else []
    )
    for name, group in groups:
        for label, rule in (("old rule", sweep_curves.old_not_learning), ("new rule", current_not_learning)):
            found = sweep_curves.tally(group, rule)
            print(
                f"{name}: {label}: false alarms {found.false_alarms} of {found.learned} runs that learned; "
                f"misses {found.misses} of {found.not_learned} that never did; "
                f"fired on those at epochs {list(found.alarm_epochs)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", nargs="?", choices=("replay", "record"), default="replay")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--curves", type=Path, default=None, help="default: the tuning set, or --held-out's")
    parser.add_argument("--held-out", action="store_true", help="the runs the rule was not tuned on")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn settings")
    parser.add_argument("--rates", type=float, nargs=2, default=(3e-5, 3e-2), metavar=("LOWEST", "HIGHEST"))
    parser.add_argument("--dataset", choices=("glyphs", "shapes"), default="glyphs")
    parser.add_argument("--render-seed", type=int, default=0, help="seed of the renders or shapes")
    parser.add_argument("--optimizers", nargs="+", default=["adam", "sgd"])
    arguments = parser.parse_args()
    curves = arguments.curves or (sweep_curves.HELD_OUT if arguments.held_out else sweep_curves.CURVES)
    if arguments.action == "record":
        record(
            arguments.runs,
            arguments.epochs,
            curves,
            arguments.seed,
            tuple(arguments.rates),
            arguments.dataset,
            arguments.render_seed,
            tuple(arguments.optimizers),
        )
    else:
        replay(curves)


if __name__ == "__main__":
    main()

"""Each model checkpoint's scores on the test split, saved when training ends, so that the Evaluate
page opens a finished run without starting TensorFlow.

The Evaluate page (`cnnlab.ui.cache.run_models.run_evaluation`) reads a checkpoint's scores from `path`
and predicts only when they are missing. The worker saves them at the end of training
(`save_after_training`), while it still has TensorFlow, the model and the data loaded. Both name the
file the same way: `evaluation.scores_path` of the checkpoint's file version (path and modification
time), the split and the run's data settings, under `<home>/cache/evaluations`.

A worker on a Ray cluster writes into a node-local home, so its scores stay there and the page
predicts on the first open instead; nothing is wrong, only slower.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnnlab.data.info import SplitData
from cnnlab.store.reader import RunReader
from cnnlab.trained import checkpoints, evaluation
from cnnlab.trained.checkpoints import Checkpoint

FOLDER = Path("cache") / "evaluations"
SAVED_SPLIT = "test"  # The split Evaluate opens on; the validation split is predicted when asked.


def folder(home: Path) -> Path:
    """The folder of the saved scores in the CNN Lab home `home`."""
    return Path(home) / FOLDER


def path(home: Path, checkpoint: Checkpoint, split: str, data_settings: Mapping[str, Any]) -> Path:
    """Where the scores of this version of `checkpoint` on `split` of the run's data are saved."""
    return evaluation.scores_path(
        folder(home),
        checkpoint.path,
        checkpoint.modified,
        split,
        json.dumps(dict(data_settings), sort_keys=True),
    )


def _same_file(first: Path, second: Path) -> bool:
    """True when the two files hold the same bytes (a `best` copied from `latest` and not rewritten)."""
    return first.stat().st_size == second.stat().st_size and first.read_bytes() == second.read_bytes()


def save_after_training(
    store: RunReader,
    run_id: str,
    data: SplitData,
    latest_scores: evaluation.Scores | None = None,
) -> list[Path]:
    """Save the test-split scores of every whole-model checkpoint of the run ("best", "latest").

    `latest_scores` are the scores of the model in memory when it is the one saved as "latest"
    (the worker predicted the test split with it for the run's results): they are reused for
    "latest", and for "best" when its file is a copy of "latest". Any other checkpoint is loaded
    and predicted. Returns the files written; none when the run's data has no test images.
    """
    images = data.x_test
    if len(images) == 0:
        return []
    settings = store.get_run(run_id).data_settings
    found = {checkpoint.name: checkpoint for checkpoint in checkpoints.models(store, run_id)}
    latest = found.get(checkpoints.LATEST)
    written: list[Path] = []
    for checkpoint in found.values():
        if latest_scores is not None and (
            checkpoint.name == checkpoints.LATEST
            or (latest is not None and _same_file(checkpoint.path, latest.path))
        ):
            scores = latest_scores
        else:
            scores = evaluation.predict_scores(checkpoints.load(checkpoint), images)
        target = path(store.home, checkpoint, SAVED_SPLIT, settings)
        evaluation.save_scores(target, scores)
        written.append(target)
    return written

"""Trained models for the Evaluate, Predict and Learn pages: the run and checkpoint pickers, and the
one cached checkpoint loader.

`checkpoint_model` is the only place the UI loads a run's model: once per server process, shared
by every session, keyed by the checkpoint's path and its file's modification time (a continued run
rewrites "latest", a better epoch rewrites "best", and the newer file is loaded). The pickers label
a run and its checkpoints with the epoch and the score `cnnlab.trained.checkpoints` reads, so the
numbers agree with the run card and with what Evaluate measures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import streamlit as st

from cnnlab.data.info import DatasetInfo, SplitData
from cnnlab.runs.records import RunRecord
from cnnlab.runs.statuses import Status
from cnnlab.trained import checkpoints, evaluation, model_files
from cnnlab.trained.checkpoints import Checkpoint, TrainedModel
from cnnlab.ui import server, state
from cnnlab.ui.data_cache import load_dataset

BEST_HELP = (
    "best: the epoch with the highest validation accuracy (training accuracy without a validation "
    "split), the earliest on ties. latest: the last epoch trained."
)


def trained_runs() -> list[RunRecord]:
    """Runs that have saved a model (a "latest" checkpoint), newest first."""
    store = server.store()
    return [run for run in store.list_runs(limit=200) if checkpoints.LATEST in store.checkpoints(run.id)]


def _default_index(choices: list[RunRecord]) -> int:
    """The run in the URL, else the newest completed run, else the newest."""
    followed = state.followed_run()
    ids = [run.id for run in choices]
    if followed in ids:
        return ids.index(followed)
    completed = [index for index, run in enumerate(choices) if run.status == Status.COMPLETED]
    return completed[0] if completed else 0


@st.cache_data(max_entries=1000, show_spinner=False)
def _best_text(run_id: str, last_epoch: int) -> str:
    # Keyed by the last epoch: recorded epochs never change, a new one changes the key.
    best = checkpoints.best_epoch(server.store(), run_id)
    return f", best {best.describe()}" if best is not None else ""


def run_label(run: RunRecord) -> str:
    """A run in a picker: its name, status, epochs and best epoch with its score."""
    return (
        f"{run.name} ({run.status}, {run.last_epoch} epochs{_best_text(run.id, run.last_epoch)}) · {run.id}"
    )


def choose_run(key: str) -> RunRecord:
    """A run picker (default: the run in the URL); stops the page with a pointer to Train when there is none."""
    choices = trained_runs()
    if not choices:
        st.info("No run has saved a model yet. Train one first: it takes seconds on the digits.")
        st.page_link("app_pages/train.py", label="Go to the Train page", icon=":material/monitoring:")
        st.stop()
    by_id = {run.id: run for run in choices}
    labels = {run.id: run_label(run) for run in choices}
    chosen = st.selectbox(
        "Run", list(by_id), index=_default_index(choices), key=key, format_func=labels.__getitem__
    )
    if chosen != state.followed_run():
        state.follow_run(chosen)
    return by_id[chosen]


def choose_checkpoint(run: RunRecord, key: str) -> Checkpoint:
    """ "best" or "latest", each labelled with its epoch and that epoch's score; stops the page if
    the run's model files are gone."""
    store = server.store()
    saved = {checkpoint.name: checkpoint for checkpoint in checkpoints.models(store, run.id)}
    if not saved:
        st.error(f"The model files of run {run.id} are missing. Choose another run.", icon=":material/block:")
        st.stop()
    labels = {name: checkpoints.describe(store, checkpoint) for name, checkpoint in saved.items()}
    which = st.radio(
        "Checkpoint", list(saved), key=key, horizontal=True, format_func=labels.__getitem__, help=BEST_HELP
    )
    return saved[which]


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _model_at(path: str, modified: int, _checkpoint: Checkpoint) -> TrainedModel:
    # Keyed by `path` and `modified` only (Streamlit skips arguments named with a leading underscore).
    return checkpoints.load(_checkpoint)


def checkpoint_model(checkpoint: Checkpoint) -> TrainedModel:
    """The checkpoint's model, loaded once per file version: cached by path and modification time,
    so a rewritten checkpoint loads again (CheckpointError for an epoch's weights)."""
    return _model_at(str(checkpoint.path), checkpoint.modified, checkpoint)


def run_data(run: RunRecord) -> SplitData:
    """The run's dataset, prepared as it was for training (cached)."""
    return load_dataset(run.data())


def run_dataset_info(run: RunRecord) -> DatasetInfo:
    """What the run's images are (prepared shape, class names, digit-like), for preprocessing new images."""
    data = run_data(run)
    return dataclasses.replace(data.info, class_names=tuple(data.class_names))


@st.cache_resource(max_entries=8, show_spinner="Evaluating the model…")
def _evaluation_at(
    path: str, modified: int, split: str, settings_json: str, _run: RunRecord, _checkpoint: Checkpoint
) -> evaluation.Evaluation:
    data = run_data(_run)
    images, labels = evaluation.split_arrays(data, split)
    return evaluation.evaluate(checkpoint_model(_checkpoint), images, labels, data.class_names)


def run_evaluation(run: RunRecord, checkpoint: Checkpoint, split: str) -> evaluation.Evaluation:
    """The evaluation of the run's checkpoint on `split` (cached per checkpoint file version)."""
    settings_json = json.dumps(run.data_settings, sort_keys=True)
    return _evaluation_at(str(checkpoint.path), checkpoint.modified, split, settings_json, run, checkpoint)


@st.cache_resource(max_entries=4, show_spinner="Checking and loading the model file…")
def _uploaded_model(digest: str, _data: bytes) -> TrainedModel:
    return model_files.load_model_bytes(_data)


def uploaded_model(data: bytes) -> TrainedModel:
    """A user's `.keras` file checked and loaded in safe mode (cached by content; ModelFileError if refused)."""
    return _uploaded_model(hashlib.sha256(data).hexdigest(), data)


def checkpoint_bytes(checkpoint: Checkpoint) -> bytes:
    """The bytes of the checkpoint file, for a download button."""
    return checkpoint.path.read_bytes()

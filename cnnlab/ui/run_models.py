"""Trained models for the Evaluate and Predict pages: the run picker, and cached models and evaluations.

Models are loaded once per server process and shared by every session, keyed by run id and
checkpoint path and the file's modification time (a continued run writes a new "latest").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import keras
import streamlit as st

from cnnlab.data.datasets import DatasetInfo, SplitData
from cnnlab.runs import statuses
from cnnlab.runs.records import RunRecord
from cnnlab.trained import evaluation, model_files
from cnnlab.ui import server, state
from cnnlab.ui.data_cache import load_dataset


def trained_runs() -> list[RunRecord]:
    """Runs that have saved a model (a "latest" checkpoint), newest first."""
    store = server.store()
    return [run for run in store.list_runs(limit=200) if "latest" in store.checkpoints(run.id)]


def _default_index(choices: list[RunRecord]) -> int:
    """The run in the URL, else the newest completed run, else the newest."""
    followed = state.followed_run()
    ids = [run.id for run in choices]
    if followed in ids:
        return ids.index(followed)
    completed = [index for index, run in enumerate(choices) if run.status == statuses.COMPLETED]
    return completed[0] if completed else 0


def _label(run: RunRecord) -> str:
    accuracy = (run.results or {}).get("test_accuracy")
    tested = f", test accuracy {accuracy:.1%}" if accuracy is not None else ""
    return f"{run.name} ({run.status}, {run.last_epoch} epochs{tested}) · {run.id}"


def choose_run(key: str) -> RunRecord:
    """A run picker (default: the run in the URL); stops the page with a pointer to Train when there is none."""
    choices = trained_runs()
    if not choices:
        st.info("No run has saved a model yet. Train one first: it takes seconds on the digits.")
        st.page_link("app_pages/train.py", label="Go to the Train page", icon=":material/monitoring:")
        st.stop()
    by_id = {run.id: run for run in choices}
    chosen = st.selectbox("Run", list(by_id), index=_default_index(choices), key=key,
                          format_func=lambda run_id: _label(by_id[run_id]))  # fmt: skip
    if chosen != state.followed_run():
        state.follow_run(chosen)
    return by_id[chosen]


def choose_checkpoint(run: RunRecord, key: str) -> str:
    """ "best" (lowest validation loss) or "latest", with the epoch each was saved at."""
    saved = server.store().checkpoints(run.id)
    options = [which for which in evaluation.CHECKPOINTS if which in saved]
    return st.radio("Checkpoint", options, key=key, horizontal=True,
                    format_func=lambda which: f"{which} (epoch {saved[which]})")  # fmt: skip


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _model_at(run_id: str, path: str, modified: int) -> keras.Model:
    return keras.saving.load_model(Path(path), compile=False, safe_mode=True)


def run_model(run_id: str, which: str) -> keras.Model:
    """The run's `which` checkpoint as a Keras model (cached; EvaluationError when it is not saved yet)."""
    path = evaluation.checkpoint_file(server.store(), run_id, which)
    return _model_at(run_id, str(path), path.stat().st_mtime_ns)


def run_data(run: RunRecord) -> SplitData:
    """The run's dataset, prepared as it was for training (cached)."""
    return load_dataset(run.data())


def run_dataset_info(run: RunRecord) -> DatasetInfo:
    """What the run's images are (prepared shape, class names, digit-like), for preprocessing new images."""
    data = run_data(run)
    return dataclasses.replace(data.info, class_names=tuple(data.class_names))


@st.cache_resource(max_entries=8, show_spinner="Evaluating the model…")
def _evaluation_at(
    run_id: str, path: str, modified: int, split: str, settings_json: str
) -> evaluation.Evaluation:
    run = server.store().get_run(run_id)
    data = run_data(run)
    images, labels = evaluation.split_arrays(data, split)
    return evaluation.evaluate(_model_at(run_id, path, modified), images, labels, data.class_names)


def run_evaluation(run: RunRecord, which: str, split: str) -> evaluation.Evaluation:
    """The evaluation of the run's `which` checkpoint on `split` (cached per checkpoint file)."""
    path = evaluation.checkpoint_file(server.store(), run.id, which)
    return _evaluation_at(
        run.id, str(path), path.stat().st_mtime_ns, split, json.dumps(run.data_settings, sort_keys=True)
    )


@st.cache_resource(max_entries=4, show_spinner="Checking and loading the model file…")
def _uploaded_model(digest: str, _data: bytes) -> keras.Model:
    return model_files.load_model_bytes(_data)


def uploaded_model(data: bytes) -> keras.Model:
    """A user's `.keras` file checked and loaded in safe mode (cached by content; ModelFileError if refused)."""
    return _uploaded_model(hashlib.sha256(data).hexdigest(), data)


def checkpoint_bytes(run_id: str, which: str) -> bytes:
    """The bytes of the run's `which` checkpoint file, for a download button."""
    return evaluation.checkpoint_file(server.store(), run_id, which).read_bytes()

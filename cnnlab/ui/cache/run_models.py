"""Trained models for the Evaluate, Predict and Learn pages: the run and checkpoint pickers, and the
one cached checkpoint loader.

`checkpoint_model` is the only place the UI loads a run's model: once per server process, shared
by every session, keyed by the checkpoint's path and its file's modification time (a continued run
rewrites "latest", a better epoch rewrites "best", and the newer file is loaded). Loads run on one
background thread, so a page can start one (`start_loading`), draw what needs no model, and use
the model once it is there (`loaded_model`). `run_evaluation` reads each checkpoint version's
scores from disk (`cnnlab.trained.saved_scores`: the worker saves them when training ends), so
Evaluate opens a finished run without starting TensorFlow. The pickers label
a run and its checkpoints with the epoch and the score `cnnlab.trained.checkpoints` reads, so the
numbers agree with the run card and with what Evaluate measures.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st

from cnnlab.data.info import DatasetInfo, SplitData
from cnnlab.errors import CnnLabError
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import Status
from cnnlab.trained import checkpoints, evaluation, saved_scores
from cnnlab.trained.calibration import Calibration
from cnnlab.trained.checkpoints import Checkpoint, TrainedModel
from cnnlab.ui import run_links, server
from cnnlab.ui.cache.data_cache import load_dataset
from cnnlab.ui.session import state

BEST_HELP = (
    "best: the epoch with the highest validation accuracy (training accuracy without a validation "
    "split), the earliest on ties. latest: the last epoch trained."
)


def trained_runs() -> list[RunRecord]:
    """Runs that have saved a model (a "latest" checkpoint), newest first."""
    store = server.store()
    return [run for run in store.list_runs(limit=200) if checkpoints.LATEST in store.checkpoints(run.id)]


def _default_index(choices: list[RunRecord]) -> int:
    """The followed run (`state.followed_run`), else (none followed) the newest completed run, else the newest."""
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
    """A run in a picker: its name, status, epochs and best epoch with its score (an ended run's from
    its results, without reading its metrics table)."""
    recorded = checkpoints.recorded_best(run)
    best = f", best {recorded.describe()}" if recorded is not None else _best_text(run.id, run.last_epoch)
    return f"{run.name} ({run.status}, {run.last_epoch} epochs{best}) · {run.id}"


def choose_run(key: str) -> RunRecord:
    """A run picker whose default is the followed run; the run picked becomes the followed one. Stops the
    page with a pointer to Train when no run has saved a model.

    A followed run that is gone or has no model yet is not replaced by another run: the page
    says so and offers the others (`run_links.pick_instead`).
    """
    choices = trained_runs()
    followed = state.followed_run()
    if followed is not None and followed not in {run.id for run in choices}:
        run_links.pick_instead(followed, choices, key, run_label)
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
    """ "best" or "latest", each labelled with its epoch and that epoch's score, one of them always
    selected; stops the page if the run's model files are gone."""
    store = server.store()
    saved = {checkpoint.name: checkpoint for checkpoint in checkpoints.models(store, run.id)}
    if not saved:
        st.error(f"The model files of run {run.id} are missing. Choose another run.", icon=":material/block:")
        st.stop()
    labels = {name: checkpoints.describe(store, checkpoint, run) for name, checkpoint in saved.items()}
    if st.session_state.get(key) not in saved:
        # Another run's choice ("best" of a run that has one, then a diverged run without it) would
        # leave the radio with nothing selected: take this run's best, else its latest.
        st.session_state[key] = next(iter(saved))
    which = st.radio(
        "Checkpoint", list(saved), key=key, horizontal=True, format_func=labels.__getitem__, help=BEST_HELP
    )
    return saved[which]


MODEL_VERSIONS_KEPT = 8
_LOADER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnnlab-model-loader")
_LOADS: OrderedDict[tuple[str, int], Future[TrainedModel]] = OrderedDict()
_LOADS_LOCK = threading.Lock()


def model_key(checkpoint: Checkpoint) -> str:
    """The name of one version of a checkpoint's model: its path and its file's modification time."""
    return f"{checkpoint.path}@{checkpoint.modified}"


def _load(checkpoint: Checkpoint) -> Future[TrainedModel]:
    """The load of this checkpoint version: started now on the loader thread, or the one under way or done.

    Our own LRU of futures, not `st.cache_resource(max_entries=...)`: that cannot tell whether a load has
    started without starting it, which `loaded_model` and `load_failure` must.
    """
    key = (str(checkpoint.path), checkpoint.modified)
    with _LOADS_LOCK:
        future = _LOADS.get(key)
        if future is None:
            future = _LOADER.submit(checkpoints.load, checkpoint)
            _LOADS[key] = future
            while len(_LOADS) > MODEL_VERSIONS_KEPT:
                _LOADS.popitem(last=False)
        _LOADS.move_to_end(key)
        return future


def start_loading(checkpoint: Checkpoint) -> None:
    """Load the checkpoint's model in the background (nothing if it is loaded or loading)."""
    _load(checkpoint)


def _started(checkpoint: Checkpoint) -> Future[TrainedModel] | None:
    with _LOADS_LOCK:
        return _LOADS.get((str(checkpoint.path), checkpoint.modified))


def loaded_model(checkpoint: Checkpoint) -> TrainedModel | None:
    """The checkpoint's model if it has loaded, else None; starts nothing (`start_loading` does)."""
    future = _started(checkpoint)
    if future is not None and future.done() and future.exception() is None:
        return future.result()
    return None


def load_failure(checkpoint: Checkpoint) -> BaseException | None:
    """Why the checkpoint's background load failed, or None (not failed, or not started)."""
    future = _started(checkpoint)
    return future.exception() if future is not None and future.done() else None


def checkpoint_model(checkpoint: Checkpoint) -> TrainedModel:
    """The checkpoint's model, loaded once per file version: cached by path and modification time,
    so a rewritten checkpoint loads again (CheckpointError for an epoch's weights)."""
    future = _load(checkpoint)
    if not future.done():
        with st.spinner("Loading the model…"):
            future.exception()  # Waits for the load without raising here.
    try:
        return future.result()
    except BaseException:
        with _LOADS_LOCK:  # A failed load is tried again next time (the file may be rewritten).
            _LOADS.pop((str(checkpoint.path), checkpoint.modified), None)
        raise


def run_data(run: RunRecord) -> SplitData:
    """The run's dataset, prepared as it was for training (cached)."""
    return load_dataset(run.data())


def run_dataset_info(run: RunRecord) -> DatasetInfo:
    """What the run's images are (prepared shape, class names, digit-like), for preprocessing new
    images: `prediction.run_info`, the same description its downloaded model files carry."""
    from cnnlab.trained import prediction

    return prediction.run_info(run)


@st.cache_resource(max_entries=16, show_spinner="Calibrating the out-of-distribution hint…")
def _calibration_at(model_key: str, _run: RunRecord, _checkpoint: Checkpoint) -> Calibration | None:
    from cnnlab.trained import prediction

    try:
        return prediction.for_run(_checkpoint, checkpoint_model(_checkpoint), run_data(_run))
    except CnnLabError:
        return None  # No held-out images: predictions come without the hint.


def run_calibration(run: RunRecord, checkpoint: Checkpoint) -> Calibration | None:
    """The thresholds of the out-of-distribution hint for this checkpoint (measured once per file
    version and kept beside it), or None when the run has no held-out images to measure them on."""
    return _calibration_at(model_key(checkpoint), run, checkpoint)


def run_evaluation(run: RunRecord, checkpoint: Checkpoint, split: str) -> evaluation.Evaluation:
    """The evaluation of the run's checkpoint on `split`: its scores read from disk when they were
    saved before (by the worker when training ended, or by any server that evaluated this checkpoint
    version), else predicted once and saved."""
    data = run_data(run)
    images, labels = evaluation.split_arrays(data, split)
    path = saved_scores.path(server.store().home, checkpoint, split, run.data_settings)
    scores = evaluation.load_scores(path)
    if scores is None or len(scores.probabilities) != len(labels):
        model = checkpoint_model(checkpoint)
        with st.spinner("Evaluating the model…"):
            scores = evaluation.predict_scores(model, images)
        evaluation.save_scores(path, scores)
    return evaluation.from_scores(images, labels, scores, data.class_names)


@st.cache_resource(max_entries=4, show_spinner="Checking and loading the model file…")
def _uploaded_model(digest: str, _data: bytes) -> TrainedModel:
    from cnnlab.trained import model_files  # Keras: imported when a file is uploaded, not with the page.

    return model_files.load_model_bytes(_data)


def uploaded_model_key(data: bytes) -> str:
    """The name of a user's model file: its content's hash."""
    return f"upload:{hashlib.sha256(data).hexdigest()}"


def uploaded_model(data: bytes) -> TrainedModel:
    """A user's `.keras` file checked and loaded in safe mode (cached by content; ModelFileError if refused)."""
    return _uploaded_model(uploaded_model_key(data), data)


def checkpoint_bytes(run: RunRecord, checkpoint: Checkpoint, calibration: Calibration | None = None) -> bytes:
    """The checkpoint's `.keras` file carrying what the run was trained on and its calibration
    (`exports.model_file`), for a download button."""
    from cnnlab.trained import exports

    return exports.model_file(run, checkpoint, calibration)

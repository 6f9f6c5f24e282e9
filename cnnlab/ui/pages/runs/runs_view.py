"""The Runs page's panels: manage one run, download its files, and compare several."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cnnlab.classroom.users import Role
from cnnlab.errors import CnnLabError
from cnnlab.figures import training as figures
from cnnlab.plain_text import as_chart_text, as_text, as_text_lines
from cnnlab.runs.views import compare
from cnnlab.store import statuses
from cnnlab.store.records import RunRecord
from cnnlab.trained import exports
from cnnlab.ui import server
from cnnlab.ui.session import controls, state
from cnnlab.ui.widgets import tables


def manage(run: RunRecord) -> None:
    """Rename, stop or delete (after confirmation) one run; a run the user may only read says why not."""
    try:
        _manage(run)
    except CnnLabError as error:  # A shared run: readable, not changeable.
        st.error(as_text_lines(error), icon=":material/block:")


def _manage(run: RunRecord) -> None:
    left, middle, right = st.columns([2, 1, 1])
    name = left.text_input("Name", run.name, key=f"rename_{run.id}")
    if name.strip() and name != run.name and left.button("Rename", key="rename_run"):
        server.scheduler().rename(run.id, name.strip())
        st.rerun()
    middle.write("")
    if middle.button("Stop", key="runs_stop", disabled=not run.is_active):
        server.scheduler().stop(run.id)
        st.rerun()
    with right.popover("Delete", disabled=run.status in statuses.LIVE):
        st.write(
            f"Delete **{as_text(run.name)}**, its metrics, snapshots and checkpoints? This cannot be undone."
        )
        if st.button("Yes, delete it", key="confirm_delete", type="primary"):
            server.scheduler().delete(run.id)
            if state.followed_run() == run.id:
                state.follow_run(None)  # Gone: the other pages no longer open it.
            st.rerun()


@st.cache_resource(max_entries=4, show_spinner=False)
def _prepared_exports(run_id: str, version: str) -> tuple[bytes, dict[str, bytes]]:
    """The zip bundle and the TFLite files of one version of a run (cached: large bytes are kept
    once by the server, not in each session's state)."""
    store = server.store()
    run = store.get_run(run_id)
    tflite = exports.tflite_files(store, run)
    return exports.bundle(store, run, tflite=tflite), tflite


def downloads(run: RunRecord) -> None:
    """Download buttons for the model, the script, the metrics, TFLite and the bundle; where the run's
    TensorBoard logs are."""
    store = server.store()
    stem = exports.file_stem(run)
    if controls.hidden_from_viewer(run):
        # The model file, the script and the bundle would show what the exercise hides.
        st.info(
            "The exercise this run was started from hides some of its settings: only its metrics download.",
            icon=":material/visibility_off:",
        )
        st.download_button(
            "Metrics (.csv)", exports.metrics_csv(store, run), f"{stem}_metrics.csv", key="download_metrics"
        )
        return
    columns = st.columns(3)
    try:
        columns[0].download_button(
            "Model (.keras)", exports.model_bytes(store, run), f"{stem}.keras", key="download_model"
        )
    except CnnLabError as error:
        columns[0].caption(str(error))
    columns[1].download_button(
        "Training script (.py)", exports.training_script(run), f"{stem}.py", key="download_script"
    )
    columns[2].download_button(
        "Metrics (.csv)", exports.metrics_csv(store, run), f"{stem}_metrics.csv", key="download_metrics"
    )
    columns = st.columns(3)
    # The session keeps only which run version was prepared; the bytes stay in the server's cache.
    version = f"{run.last_epoch}:{run.status}"
    if columns[0].button("Prepare TFLite and the zip bundle", key="prepare_bundle"):
        try:
            with st.spinner("Converting to TensorFlow Lite…"):
                _prepared_exports(run.id, version)
            st.session_state[f"prepared_exports_{run.id}"] = version
        except CnnLabError as error:
            st.error(as_text_lines(error))
    if st.session_state.get(f"prepared_exports_{run.id}") == version:
        bundle, tflite = _prepared_exports(run.id, version)
        columns[1].download_button("Bundle (.zip)", bundle, f"{stem}.zip", key="download_bundle")
        columns[2].download_button(
            "TFLite model", tflite["model.tflite"], f"{stem}.tflite", key="download_tflite"
        )
        columns[2].download_button(
            "TFLite, quantized (8-bit weights)",
            tflite["model_quantized.tflite"],
            f"{stem}_quantized.tflite",
            key="download_quantized",
        )
    if exports.has_tensorboard_logs(store, run.id) and store.user.role == Role.STUDENT:
        st.caption("TensorBoard logs were written during training; they stay on the server.")
    elif exports.has_tensorboard_logs(store, run.id):
        # The server's own folders are named to its operator and teachers only, never to a student.
        folder = exports.tensorboard_folder(store, run.id)
        st.caption(f"TensorBoard logs, written during training: {folder}. View every run with:")
        st.code(f"tensorboard --logdir {store.home / 'runs'}", language="bash")
    else:
        st.caption(
            "This run has no TensorBoard logs: it has no whole epoch yet, "
            "or it was trained before they were written."
        )


def comparison(chosen: list[RunRecord]) -> None:
    """Curves of several runs overlaid, and a table of how their settings and layers differ."""
    store = server.store()
    metric_tables = [
        (as_chart_text(f"{run.name} ({run.id[-4:]})"), store.epoch_metrics(run.id)) for run in chosen
    ]
    left, right = st.columns(2)
    left.plotly_chart(figures.overlay(metric_tables, "accuracy"), key="compare_accuracy")
    right.plotly_chart(figures.overlay(metric_tables, "loss"), key="compare_loss")
    only_different = st.toggle("Only what differs", value=True, key="only_different")
    hidden = {run.id: controls.hidden_fields_from_viewer(run) for run in chosen}
    table = compare.differences(chosen, only_different, hidden)
    if "model.parameters" in table.index:
        row = [str(value) for value in table.loc["model.parameters"]]
        table.loc["model.parameters"] = pd.Series(
            [tables.count_text(int(value)) if value.isdigit() else value for value in row],
            index=table.columns,
        )
    st.dataframe(table, key="compare_table")

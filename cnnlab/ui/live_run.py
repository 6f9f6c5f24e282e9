"""The Train page's live view of one run: status, controls, progress, and what the network learns.

A fragment polls the store once a second while the run is active and redraws; when the run
ends it reruns the page once, which stops the polling.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.figures import training as figures
from cnnlab.runs import statuses
from cnnlab.runs.diagnosis import Diagnosis
from cnnlab.runs.records import RunRecord
from cnnlab.runs.statuses import Status
from cnnlab.ui import run_health, run_links, server, state, tables

POLL_SECONDS = 1.0
STATUS_ICONS: dict[Status, str] = {
    Status.QUEUED: ":material/hourglass_top:",
    Status.STARTING: ":material/rocket_launch:",
    Status.RUNNING: ":material/directions_run:",
    Status.PAUSED: ":material/pause_circle:",
    Status.COMPLETED: ":material/check_circle:",
    Status.STOPPED: ":material/stop_circle:",
    Status.DIVERGED: ":material/error:",
    Status.FAILED: ":material/cancel:",
    Status.INTERRUPTED: ":material/warning:",
}


def status_message(run: RunRecord, epochs_planned: int) -> str:
    """One sentence on where the run is, in words a learner understands."""
    if run.status == Status.QUEUED:
        return f"Queued: position {run.queue_position or 1} in the queue; it starts when a worker is free."
    if run.status == Status.STARTING:
        return "Starting: preparing the data and the model…"
    if run.status == Status.RUNNING and run.control == "pause":
        return f"Pausing: epoch {min(run.last_epoch + 1, epochs_planned)} stops after its current batch…"
    if run.status == Status.RUNNING:
        return f"Training: epoch {min(run.last_epoch + 1, epochs_planned)} of {epochs_planned}."
    if run.status == Status.PAUSED:
        return f"Paused after epoch {run.last_epoch}; resume to carry on from the same optimizer state."
    if run.status == Status.COMPLETED:
        accuracy = run.result("test_accuracy")
        early = " (stopped early: no more progress)" if run.last_epoch < epochs_planned else ""
        tested = f"; test accuracy {accuracy:.1%}" if accuracy is not None else ""
        return f"Completed after {run.last_epoch} epochs{early}{tested}."
    reason = run.reason or ""
    hint = f" {run.hint}" if run.hint else ""
    if run.status == Status.STOPPED:
        # A run cancelled in the queue has the reason "Stopped before it started.": say it once.
        said = (
            "Stopped before it started."
            if run.started_at is None
            else f"Stopped after epoch {run.last_epoch}."
        )
        return said if reason in ("", said) else f"{said} {reason}"
    return {
        Status.DIVERGED: f"Diverged: {reason}{hint}",
        Status.FAILED: f"Failed: {reason}{hint}",
        Status.INTERRUPTED: f"Interrupted: {reason or 'the server restarted while it ran.'} Continue it to carry on.",
    }.get(run.status, str(run.status))


def _controls(run: RunRecord) -> None:
    """Stop, pause or resume, continue, and fork, as the run's status allows."""
    scheduler = server.scheduler()
    columns = st.columns([1, 1, 2, 2])
    if columns[0].button("Stop", key="stop_run", disabled=not run.is_active):
        scheduler.stop(run.id)
        st.rerun()
    # One button in one place: Pause while running, Resume while paused, and while the worker has
    # not yet answered a request, that request's progress, disabled.
    pending = run.control if run.status in statuses.LIVE else None
    if pending in ("pause", "resume"):
        label = "Pausing…" if pending == "pause" else "Resuming…"
        columns[1].button(label, key="control_pending", disabled=True)
    elif run.status == Status.PAUSED:
        if columns[1].button("Resume", key="resume_run"):
            scheduler.resume(run.id)
            st.rerun()
    elif columns[1].button("Pause", key="pause_run", disabled=run.status != Status.RUNNING or bool(pending)):
        scheduler.pause(run.id)
        st.rerun()
    with columns[2].popover("Continue", disabled=run.status not in statuses.CONTINUABLE):
        extra = st.number_input("More epochs", 1, 200, 5, key="continue_epochs")
        if st.button("Continue training", key="continue_run"):
            scheduler.continue_run(run.id, int(extra))
            st.rerun()
    saved = sorted(
        epoch for name, epoch in server.store().checkpoints(run.id).items() if name.startswith("epoch_")
    )
    with columns[3].popover("Fork", disabled=not saved or run.is_active):
        if not saved:
            st.caption("A fork needs a finished epoch.")
            return
        epoch = (
            saved[-1]
            if len(saved) == 1
            else st.select_slider("From epoch", saved, saved[-1], key="fork_epoch")
        )
        st.caption("The fork starts from that epoch's weights with the hyperparameters set above.")
        if st.button("Fork", key="fork_run"):
            child = scheduler.fork(run.id, epoch, state.draft().training)
            state.follow_run(child.id)
            st.rerun()


def _progress(run: RunRecord, epochs_planned: int, epoch_table: pd.DataFrame) -> None:
    done = min(run.last_epoch, epochs_planned)
    eta = ""
    if run.status == Status.PAUSED or run.control == "pause":
        eta = " — paused" if run.status == Status.PAUSED else " — pausing"  # No time runs down meanwhile.
    elif run.status == Status.RUNNING and not epoch_table.empty and "epoch_seconds" in epoch_table:
        remaining = (epochs_planned - done) * float(epoch_table["epoch_seconds"].tail(3).mean())
        eta = f" — about {int(remaining // 60)}:{int(remaining % 60):02d} left"
    st.progress(done / max(epochs_planned, 1), text=f"{done} of {epochs_planned} epochs{eta}")


def _epoch_choice(run_id: str, kind: str, key: str) -> int | None:
    """The latest epoch with a snapshot of `kind`, or an earlier one when the user replays."""
    epochs = server.store().snapshot_epochs(run_id, kind)
    if len(epochs) < 2:
        return epochs[0] if epochs else None
    if not st.toggle("Replay an earlier epoch", key=f"{key}_replay"):
        st.caption(f"Epoch {epochs[-1]} (latest)")
        return epochs[-1]
    return st.select_slider("Epoch", epochs, epochs[-1], key=key)


def _filters_and_maps(run: RunRecord) -> None:
    left, right = st.columns(2)
    with left:
        st.markdown("**Kernels** (blue negative, red positive)")
        epoch = _epoch_choice(run.id, "kernels", "kernels_epoch")
        kernels = server.snapshot(run.id, epoch, "kernels") if epoch is not None else {}
        if not kernels:
            st.caption("The model has no convolution layer yet, or the first epoch has not ended.")
        else:
            layer = st.selectbox("Conv layer", list(kernels), key="kernel_layer")
            st.plotly_chart(figures.kernels(kernels[layer], layer=layer), key="kernels_figure")
    with right:
        st.markdown("**Feature maps** of one validation image")
        epoch = _epoch_choice(run.id, "feature_maps", "maps_epoch")
        maps = server.snapshot(run.id, epoch, "feature_maps") if epoch is not None else {}
        panel = _panel(run.id)
        if not maps or panel is None:
            st.caption("Feature maps appear after the first epoch.")
            return
        layer = st.selectbox("Layer", list(maps), key="map_layer")
        count = len(panel["images"]) + len(panel.get("probes", []))
        sample = st.selectbox(
            "Image", range(count), key="map_sample", format_func=lambda index: _sample_name(panel, index)
        )
        st.plotly_chart(figures.feature_maps(maps[layer][sample], layer=layer), key="maps_figure")


def _sample_name(panel: Mapping[str, np.ndarray], index: int) -> str:
    names = [str(name) for name in panel["class_names"]]
    if index < len(panel["labels"]):
        return f"image {index + 1} (a {names[int(panel['labels'][index])]})"
    return f"pinned probe {index - len(panel['labels']) + 1}"


def _panel(run_id: str) -> dict[str, np.ndarray] | None:
    store = server.store()
    epochs = store.snapshot_epochs(run_id, "panel")
    return server.snapshot(run_id, epochs[0], "panel") if epochs else None


def _confusion_and_predictions(run: RunRecord) -> None:
    left, right = st.columns(2)
    with left:
        epoch = _epoch_choice(run.id, "confusion", "confusion_epoch")
        if epoch is None:
            st.caption("The confusion matrix appears after the first epoch.")
        else:
            confusion = server.snapshot(run.id, epoch, "confusion")
            normalise = st.toggle("Normalise rows", key="confusion_normalise")
            names = [str(name) for name in confusion["class_names"]]
            st.plotly_chart(
                figures.confusion_matrix(confusion["matrix"], names, normalise), key="confusion_figure"
            )
    with right:
        st.markdown("**Predictions on the sample panel**")
        epoch = _epoch_choice(run.id, "predictions", "predictions_epoch")
        panel = _panel(run.id)
        if epoch is None or panel is None:
            st.caption("Predictions appear after the first epoch.")
            return
        predictions = server.snapshot(run.id, epoch, "predictions")
        names = [str(name) for name in panel["class_names"]]
        st.plotly_chart(
            figures.prediction_panel(panel["images"], panel["labels"], predictions["panel"], names),
            key="predictions_figure",
        )


def _no_metrics_message(run: RunRecord) -> str:
    """What the curves tab says for a run without a single recorded metric, instead of empty charts."""
    if run.is_active:
        return "The curves appear with the first batch's metrics."
    return f"This run is {run.status} and recorded no metrics, so there are no curves to show."


def _curves(epoch_table: pd.DataFrame, batch_table: pd.DataFrame, found: list[Diagnosis]) -> None:
    left, right = st.columns(2)
    left.plotly_chart(figures.curves(epoch_table, batch_table, "loss", found), key="loss_curve")
    right.plotly_chart(figures.curves(epoch_table, batch_table, "accuracy", found), key="accuracy_curve")
    if not epoch_table.empty:
        st.plotly_chart(figures.learning_rate(epoch_table), key="learning_rate_curve")


def live_view(run_id: str) -> None:
    """The whole live view of run `run_id`, refreshed while the run is active."""
    try:
        first = server.store().get_run(run_id)
    except CnnLabError:
        # The link names a run that is gone: say so, and keep the link until the user picks another.
        every_run = server.store().list_runs(limit=200)
        run_links.pick_instead(run_id, every_run, "train_run", run_links.short_label)
    started_active = first.is_active

    @st.fragment(run_every=POLL_SECONDS if started_active else None)
    def refresh() -> None:
        run = server.store().get_run(run_id)
        if started_active and not run.is_active:
            st.rerun()  # The run ended: redraw the page once, without polling.
        epochs_planned = run.training().epochs
        st.subheader(f"{STATUS_ICONS.get(run.status, '')} {run.name}")
        message = status_message(run, epochs_planned)
        show = {Status.DIVERGED: st.error, Status.FAILED: st.error, Status.COMPLETED: st.success}
        show.get(run.status, st.info)(message)
        if run.traceback:
            with st.expander("Technical details (traceback)"):
                st.code(run.traceback)
        found = run_health.diagnoses(run.id)
        run_health.show_diagnoses(found, run.status)
        _controls(run)
        epoch_table = server.store().epoch_metrics(run.id)
        _progress(run, epochs_planned, epoch_table)
        batch_table = server.store().batch_metrics(run.id)
        curves_tab, filters_tab, confusion_tab, health_tab, log_tab = st.tabs(
            ["Curves", "Filters and feature maps", "Confusion and predictions", "Layer health", "Event log"],
            key="live_tabs",
            on_change="rerun",
        )
        with curves_tab:
            if epoch_table.empty and batch_table.empty:
                st.info(_no_metrics_message(run), icon=":material/show_chart:")
            else:
                _curves(epoch_table, batch_table, found)
        with filters_tab:
            _filters_and_maps(run)
        with confusion_tab:
            _confusion_and_predictions(run)
        if health_tab.open:  # Drawn only when chosen: the other tabs already cost every poll.
            with health_tab:
                run_health.layer_health_tab(run.id)
        with log_tab:
            st.dataframe(tables.event_log(server.store().events(run.id)), hide_index=True, key="event_log")

    refresh()

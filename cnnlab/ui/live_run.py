"""The Train page's live view of one run: status, controls, progress, and what the network learns.

A fragment polls while the run is active and redraws: every second while it trains, every few
seconds while it is queued or paused (`poll_seconds`), never once it has ended; when the interval
a run needs changes, the page reruns once to set the new one. A viewer costs little: only the open
tab is drawn, the tables come from the server's one copy of the run (`cnnlab.ui.run_cache`: read
once per tick for every session, only what is new) and the curves' figures are built once per
version of it. The control buttons write their request in their click callback, before anything
is redrawn, so a Stop reaches the worker at once and the view says "Stopping…" in the same rerun.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.figures import training as figures
from cnnlab.runs import devices, statuses
from cnnlab.runs.live_frames import Frames, LiveFrames
from cnnlab.runs.records import RunRecord
from cnnlab.runs.statuses import Status
from cnnlab.ui import run_cache, run_health, run_links, server, state, tables

POLL_SECONDS = 1.0  # while the run starts or trains, and while a request waits for its worker
QUEUED_POLL_SECONDS = 3.0  # a queued run only moves up the queue or starts
PAUSED_POLL_SECONDS = 5.0  # a paused run changes only when someone resumes or stops it
TABS = ("Curves", "Filters and feature maps", "Confusion and predictions", "Layer health", "Event log")
CONTROL_ERROR = "live_control_error"  # session state: why the last control click was refused
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


def poll_seconds(status: Status, control: str | None) -> float | None:
    """How often the live view of a run in `status` (with `control` pending) reads it; None: never."""
    if status in (Status.STARTING, Status.RUNNING):
        return POLL_SECONDS
    if status == Status.PAUSED:
        return POLL_SECONDS if control else PAUSED_POLL_SECONDS  # a resume or stop is on its way
    if status == Status.QUEUED:
        return QUEUED_POLL_SECONDS
    return None


def status_message(run: RunRecord, epochs_planned: int) -> str:
    """One sentence on where the run is, in words a learner understands."""
    if run.control == "stop" and run.status in statuses.LIVE:
        return "Stopping: the run ends after its current batch…"
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


def request(action: str, run_id: str) -> None:
    """A control button's click callback: ask the run's worker to stop, pause or resume, at once.

    It runs before the view redraws, so the request is in the store whatever the redraw costs, and
    the redraw shows it ("Stopping…"). A request the run can no longer take is said, not raised.
    """
    scheduler = server.scheduler()
    st.session_state.pop(CONTROL_ERROR, None)
    try:
        {"stop": scheduler.stop, "pause": scheduler.pause, "resume": scheduler.resume}[action](run_id)
    except CnnLabError as error:
        st.session_state[CONTROL_ERROR] = str(error)


def _controls(run: RunRecord, frames: Frames) -> None:
    """Stop, pause or resume, continue, and fork, as the run's status allows."""
    if CONTROL_ERROR in st.session_state:
        st.error(st.session_state.pop(CONTROL_ERROR))
    columns = st.columns([1, 1, 2, 2])
    # One button in one place for each request: while the worker has not yet answered it, its
    # progress, disabled.
    pending = run.control if run.status in statuses.LIVE else None
    columns[0].button(
        "Stopping…" if pending == "stop" else "Stop",
        key="stop_run",
        disabled=not run.is_active or pending == "stop",
        on_click=request,
        args=("stop", run.id),
    )
    if pending in ("pause", "resume"):
        label = "Pausing…" if pending == "pause" else "Resuming…"
        columns[1].button(label, key="control_pending", disabled=True)
    elif run.status == Status.PAUSED:
        columns[1].button(
            "Resume", key="resume_run", disabled=bool(pending), on_click=request, args=("resume", run.id)
        )
    else:
        columns[1].button(
            "Pause",
            key="pause_run",
            disabled=run.status != Status.RUNNING or bool(pending),
            on_click=request,
            args=("pause", run.id),
        )
    # A disabled popover cannot open, so its widgets are not drawn (nor sent with every tick).
    continuable = run.status in statuses.CONTINUABLE
    with columns[2].popover("Continue", disabled=not continuable):
        if continuable:
            extra = st.number_input("More epochs", 1, 200, 5, key="continue_epochs")
            if st.button("Continue training", key="continue_run"):
                try:
                    server.scheduler().continue_run(run.id, int(extra))
                except CnnLabError as error:
                    st.error(str(error))
                else:
                    st.rerun()
    saved = sorted(epoch for name, epoch in frames.checkpoints.items() if name.startswith("epoch_"))
    with columns[3].popover("Fork", disabled=not saved or run.is_active):
        if not saved or run.is_active:
            return
        epoch = (
            saved[-1]
            if len(saved) == 1
            else st.select_slider("From epoch", saved, saved[-1], key="fork_epoch")
        )
        st.caption("The fork starts from that epoch's weights with the hyperparameters set above.")
        if st.button("Fork", key="fork_run"):
            try:
                child = server.scheduler().fork(run.id, epoch, state.draft().training)
            except CnnLabError as error:
                st.error(str(error))
            else:
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


def _curves(run: RunRecord, live: LiveFrames, frames: Frames) -> None:
    """Loss, accuracy and learning rate, each figure built once per version for every viewer."""
    if frames.epochs.empty and frames.batches.empty:
        st.info(_no_metrics_message(run), icon=":material/show_chart:")
        return

    def curve(metric: str) -> go.Figure:
        return live.memo(
            frames.version,
            ("curves", metric),
            lambda: figures.curves(frames.epochs, frames.batches, metric, frames.diagnoses),
        )

    left, right = st.columns(2)
    left.plotly_chart(curve("loss"), key="loss_curve")
    right.plotly_chart(curve("accuracy"), key="accuracy_curve")
    if not frames.epochs.empty:
        rates = live.memo(frames.version, ("learning_rate",), lambda: figures.learning_rate(frames.epochs))
        st.plotly_chart(rates, key="learning_rate_curve")


def live_view(run_id: str) -> None:
    """The whole live view of run `run_id`, refreshed while the run is active."""
    try:
        first = server.store().get_run(run_id)
    except CnnLabError:
        # The link names a run that is gone: say so, and keep the link until the user picks another.
        every_run = server.store().list_runs(limit=200)
        run_links.pick_instead(run_id, every_run, "train_run", run_links.short_label)
    interval = poll_seconds(first.status, first.control)

    @st.fragment(run_every=interval)
    def refresh() -> None:
        # Read through the session's own reader first: it refuses a run the user may not see, so
        # the shared cache below only ever serves a run this session may read.
        reader = server.store()
        run = reader.get_run(run_id)
        if poll_seconds(run.status, run.control) != interval:
            st.rerun()  # Queued to live, paused, ended: redraw the page once with the new interval.
        live = run_cache.live(run, reader.home)
        frames = live.current(status=run.status.value, control=run.control)
        epochs_planned = run.training().epochs
        st.subheader(f"{STATUS_ICONS.get(run.status, '')} {run.name}")
        device = devices.recorded_device(run.results)
        if device:
            st.caption(f"{'Training' if run.is_active else 'Trained'} on {device}")
        message = status_message(run, epochs_planned)
        show = {Status.DIVERGED: st.error, Status.FAILED: st.error, Status.COMPLETED: st.success}
        show.get(run.status, st.info)(message)
        if run.traceback:
            with st.expander("Technical details (traceback)"):
                st.code(run.traceback)
        run_health.show_diagnoses(frames.diagnoses, run.status)
        _controls(run, frames)
        _progress(run, epochs_planned, frames.epochs)
        # Only the open tab is drawn: the others' charts are not built, read or sent at all.
        tabs = st.tabs(list(TABS), key="live_tabs", on_change="rerun")
        draw = {
            "Curves": lambda: _curves(run, live, frames),
            "Filters and feature maps": lambda: _filters_and_maps(run),
            "Confusion and predictions": lambda: _confusion_and_predictions(run),
            "Layer health": lambda: run_health.layer_health_tab(run.id),
            "Event log": lambda: st.dataframe(
                tables.event_log(frames.events), hide_index=True, key="event_log"
            ),
        }
        for name, tab in zip(TABS, tabs, strict=True):
            if tab.open:
                with tab:
                    draw[name]()

    refresh()

"""The Train page's live view of one run: status, progress, and what the network learns.

A run that is queued or training is followed through its stream (`cnnlab.ui.stream`): the progress
bar and the curves are drawn in the browser from the run's Server-Sent Events, points appended as
they arrive; the kernels, feature maps, confusion matrix and predictions are fetched by the browser
from their epoch's address as the stream announces a new snapshot. The page script reruns only on a
user's action (a layer, an image, a replayed epoch) or on news the stream brings: the run ended (or
started), a diagnosis, and, while the layer health is open (or a snapshot tab has drawn fewer than
two epochs), a new epoch's snapshot. A pause, a resume or a request on its way (a Stop from any
viewer) is drawn by the browser from the stream: the status sentence beside the progress bar, and
the Stop and Pause or Resume buttons. One watcher on the server reads the run for every viewer.

Where the stream does not connect (a proxy that buffers it), the view falls back to polling and says
so: a fragment redraws every second while the run trains (every 2 or 3 s while a crowd follows it,
`crowd_seconds`), every few seconds while it is queued or paused (`poll_seconds`), never once it has
ended. The tables come from the server's one copy of the run (`cnnlab.ui.pages.train.run_cache`),
and the curves' figures are built once per version of it. The controls live in a fragment of their
own (`cnnlab.ui.pages.train.live_controls`): a click reruns only them, so a Stop is written and said at once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.figures import training as figures
from cnnlab.figures.snapshots import FigureChoice, snapshot_figure
from cnnlab.runs.views import time_left
from cnnlab.runs.views.live_frames import Frames, LiveFrames
from cnnlab.store import records
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import Status
from cnnlab.ui import run_links, server
from cnnlab.ui.pages.train import live_controls, run_cache, run_health
from cnnlab.ui.pages.train.run_status import (
    STATUS_ICONS,
    said_by_controls,
    show_status,
    status_message,
    status_sentence,
    stream_words,
)
from cnnlab.ui.session import controls, identity
from cnnlab.ui.stream import live_chart
from cnnlab.ui.widgets import tables

__all__ = ["STATUS_ICONS", "live_view", "poll_seconds", "status_message"]

POLL_SECONDS = 1.0  # while the run starts or trains, and while a request waits for its worker
QUEUED_POLL_SECONDS = 3.0  # a queued run only moves up the queue or starts
PAUSED_POLL_SECONDS = 5.0  # a paused run changes only when someone resumes or stops it
# A crowd following one run refreshes less often: (at least this many viewers, seconds), largest first.
CROWD_POLL_SECONDS = ((20, 3.0), (5, 2.0))
# Back to a shorter interval only once the crowd is below this share of the size that set the longer
# one, so that a viewer coming and going at a threshold does not rerun every viewer's page.
CROWD_EASING = 0.8
TABS = ("Curves", "Filters and feature maps", "Confusion and predictions", "Layer health", "Event log")
SNAPSHOT_TABS = TABS[1:3]  # their figures are fetched by the browser as the stream announces each epoch
# Pixels: the loss and accuracy charts, low enough to sit whole on a 1280x720 projector under the
# run's status and controls.
CURVE_HEIGHT = 260
INTERVAL = "live_interval"  # session state: (run id, the refresh interval the live view was drawn with)
FALLBACK = "live_stream_fallback"  # session state: the runs whose stream did not connect (polled instead)
FALLBACK_NOTE = (
    "The live stream did not connect (a proxy between you and the server may hold it back), so this "
    "view refreshes on a timer instead."
)


def _event_log(events: pd.DataFrame) -> None:
    """The run's events in plain words; which process took the run and the like one click away."""
    st.dataframe(
        tables.event_log(events),
        hide_index=True,
        key="event_log",
        column_config=tables.EVENT_LOG_COLUMNS,
    )
    technical = tables.event_log(events, technical=True)
    if not technical.empty:
        with st.expander("Technical details (processes, warm starts)"):
            st.dataframe(
                technical, hide_index=True, key="event_log_technical", column_config=tables.EVENT_LOG_COLUMNS
            )


def crowd_seconds(viewers: int, current: float | None = None) -> float:
    """The refresh interval of a live run that `viewers` sessions follow (refreshing every `current`)."""
    wanted = next((seconds for least, seconds in CROWD_POLL_SECONDS if viewers >= least), POLL_SECONDS)
    if current is not None and wanted < current:
        for least, seconds in CROWD_POLL_SECONDS:
            if seconds == current and viewers >= least * CROWD_EASING:
                return current
    return wanted


def poll_seconds(
    status: Status, control: str | None, viewers: int = 1, current: float | None = None
) -> float | None:
    """How often the live view of a run in `status` (with `control` pending) reads it; None: never.

    `viewers`: the sessions following the run; `current`: the interval the view refreshes at now.
    """
    if status in (Status.STARTING, Status.RUNNING) or (status == Status.PAUSED and control):
        return crowd_seconds(viewers, current)  # A paused run's resume or stop is on its way.
    if status == Status.PAUSED:
        return PAUSED_POLL_SECONDS
    if status == Status.QUEUED:
        return QUEUED_POLL_SECONDS
    return None


def _progress(run: RunRecord, epochs_planned: int, frames: Frames) -> None:
    done = min(run.last_epoch, epochs_planned)
    eta = ""
    if run.status == Status.PAUSED or run.control == "pause":
        eta = " — paused" if run.status == Status.PAUSED else " — pausing"  # No time runs down meanwhile.
    elif run.status == Status.RUNNING:
        # Training time only: pauses and TensorFlow's first compiled step are left out.
        epochs, first_batches = time_left.recorded_timings(frames.epochs, frames.batches)
        left = time_left.seconds_left(epochs, epochs_planned, first_batches)
        eta = f" — {time_left.describe(left)}" if left is not None else ""
    st.progress(done / max(epochs_planned, 1), text=f"{done} of {epochs_planned} epochs{eta}")


def _epoch_choice(run_id: str, kind: str, key: str, streamed: bool) -> tuple[int | None, bool]:
    """The latest epoch with a snapshot of `kind`, or an earlier one when the user replays; and
    whether the user replays (a streamed view says the latest epoch beside its figure)."""
    epochs = server.store().snapshot_epochs(run_id, kind)
    if len(epochs) < 2:
        return (epochs[0] if epochs else None), False
    if not st.toggle("Replay an earlier epoch", key=f"{key}_replay"):
        if not streamed:
            st.caption(f"Epoch {epochs[-1]} (latest)")
        return epochs[-1], False
    return st.select_slider("Epoch", epochs, epochs[-1], key=key), True


def _snapshot_chart(
    run: RunRecord,
    kind: str,
    epoch: int,
    live: bool,
    panel: Mapping[str, np.ndarray] | None,
    choice: FigureChoice,
    key: str,
) -> None:
    """The figure of `run`'s snapshot of `kind` at `epoch`; `live`: the latest epoch of a streamed
    run, drawn in the browser and kept at the newest epoch without a rerun."""
    if live:
        query = {
            "layer": choice.layer,
            "sample": str(choice.sample),
            "normalise": "1" if choice.normalise else "",
        }
        user = identity.current_user().id
        live_chart.snapshot_figure(server.store().home, user, run.id, kind, epoch, query, key)
    else:
        arrays = server.snapshot(run.id, epoch, kind)
        st.plotly_chart(snapshot_figure(kind, arrays, panel, choice), key=key)


def _filters_and_maps(run: RunRecord, streamed: bool) -> None:
    if controls.layers_hidden_from_viewer(run):
        controls.say_layers_hidden()  # Their names and kernels would show what the exercise hides.
        return
    left, right = st.columns(2)
    with left:
        st.markdown("**Kernels** (blue negative, red positive)")
        epoch, replaying = _epoch_choice(run.id, "kernels", "kernels_epoch", streamed)
        kernels = server.snapshot(run.id, epoch, "kernels") if epoch is not None else {}
        if epoch is None or not kernels:
            st.caption("The model has no convolution layer yet, or the first epoch has not ended.")
        else:
            layer = st.selectbox("Conv layer", list(kernels), key="kernel_layer")
            choice = FigureChoice(layer=layer)
            _snapshot_chart(run, "kernels", epoch, streamed and not replaying, None, choice, "kernels_figure")
    with right:
        st.markdown("**Feature maps** of one validation image")
        epoch, replaying = _epoch_choice(run.id, "feature_maps", "maps_epoch", streamed)
        maps = server.snapshot(run.id, epoch, "feature_maps") if epoch is not None else {}
        panel = _panel(run.id)
        if epoch is None or not maps or panel is None:
            st.caption("Feature maps appear after the first epoch.")
            return
        layer = st.selectbox("Layer", list(maps), key="map_layer")
        count = len(panel["images"]) + len(panel.get("probes", []))
        sample = st.selectbox(
            "Image", range(count), key="map_sample", format_func=lambda index: _sample_name(panel, index)
        )
        choice = FigureChoice(layer=layer, sample=sample)
        _snapshot_chart(run, "feature_maps", epoch, streamed and not replaying, panel, choice, "maps_figure")


def _sample_name(panel: Mapping[str, np.ndarray], index: int) -> str:
    names = [str(name) for name in panel["class_names"]]
    if index < len(panel["labels"]):
        return f"image {index + 1} (a {names[int(panel['labels'][index])]})"
    return f"pinned probe {index - len(panel['labels']) + 1}"


def _panel(run_id: str) -> dict[str, np.ndarray] | None:
    store = server.store()
    epochs = store.snapshot_epochs(run_id, "panel")
    return server.snapshot(run_id, epochs[0], "panel") if epochs else None


def _confusion_and_predictions(run: RunRecord, streamed: bool) -> None:
    left, right = st.columns(2)
    with left:
        epoch, replaying = _epoch_choice(run.id, "confusion", "confusion_epoch", streamed)
        if epoch is None:
            st.caption("The confusion matrix appears after the first epoch.")
        else:
            choice = FigureChoice(normalise=st.toggle("Normalise rows", key="confusion_normalise"))
            live = streamed and not replaying
            _snapshot_chart(run, "confusion", epoch, live, None, choice, "confusion_figure")
    with right:
        st.markdown("**Predictions on the sample panel**")
        epoch, replaying = _epoch_choice(run.id, "predictions", "predictions_epoch", streamed)
        panel = _panel(run.id)
        if epoch is None or panel is None:
            st.caption("Predictions appear after the first epoch.")
            return
        live = streamed and not replaying
        _snapshot_chart(run, "predictions", epoch, live, panel, FigureChoice(), "predictions_figure")


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
            lambda: figures.curves(frames.epochs, frames.batches, metric, frames.diagnoses).update_layout(
                height=CURVE_HEIGHT
            ),
        )

    left, right = st.columns(2)
    left.plotly_chart(curve("loss"), key="loss_curve")
    right.plotly_chart(curve("accuracy"), key="accuracy_curve")
    if not frames.epochs.empty:
        rates = live.memo(frames.version, ("learning_rate",), lambda: figures.learning_rate(frames.epochs))
        st.plotly_chart(rates, key="learning_rate_curve")


def _streamed(run: RunRecord) -> bool:
    """True when the view follows `run` through its stream: an active run whose stream connects."""
    return run.is_active and run.id not in st.session_state.get(FALLBACK, set())


def _fall_back(run_id: str) -> None:
    """The watch's trigger when the stream said nothing in time: follow this run by polling instead."""
    st.session_state[FALLBACK] = st.session_state.get(FALLBACK, set()) | {run_id}


def _rerun_on_snapshot(drawn_epoch: int | None) -> bool:
    """Whether a new epoch's snapshot reruns the page: never for the curves; for the snapshot figures
    only until the page has drawn two epochs (their figures follow the stream; the page draws the
    first figure, then the replay toggle); always for the layer health, drawn by the page."""
    tab: str = st.session_state.get("live_tabs", TABS[0])
    if tab in SNAPSHOT_TABS:
        return drawn_epoch is None or drawn_epoch < 2
    return tab != TABS[0]


def _news(run: RunRecord, frames: Frames) -> None:
    """Rerun the live view (this fragment) for a diagnosis, or a snapshot it draws, the stream brings."""
    drawn_epoch = frames.version.snapshot_epoch if frames.version else None
    drawn = {"diagnoses": len(frames.diagnoses), "snapshot": drawn_epoch}
    user = identity.current_user().id
    live_chart.news(
        server.store().home, user, run.id, drawn, rerun_on_snapshot=_rerun_on_snapshot(drawn_epoch)
    )


def _watch(run: RunRecord) -> None:
    """The run's status sentence and progress bar, kept current from its stream; it reruns the page
    once when the run ends (or starts), after the sentence says so."""
    live_chart.watch(
        server.store().home,
        identity.current_user().id,
        run.id,
        {"status": run.status.value, "control": run.control},
        sentence=status_sentence(run),
        words=stream_words(run),
        on_fallback=lambda: _fall_back(run.id),
    )


def live_view(run_id: str) -> None:
    """The whole live view of run `run_id`, following it while the run is active."""
    reader = server.store()
    try:
        first = reader.get_run(run_id)
    except CnnLabError:
        # The link names a run that is gone: say so, and keep the link until the user picks another.
        every_run = reader.list_runs(limit=200)
        run_links.pick_instead(run_id, every_run, "train_run", run_links.short_label)
    streamed = _streamed(first)
    drawn_with = st.session_state.get(INTERVAL)
    current = drawn_with[1] if drawn_with and drawn_with[0] == run_id else None
    viewers = run_cache.viewers(first, reader.home)
    interval = None if streamed else poll_seconds(first.status, first.control, viewers, current)
    st.session_state[INTERVAL] = (run_id, interval)
    # After a click, the clicking session watches for the answer when its ticks are far apart.
    live_controls.controls(run_id, interval if interval and interval > POLL_SECONDS else 0.0, streamed)
    if streamed:
        # Outside the fragment below: the run's end reruns the whole page once (Continue and Fork).
        _watch(first)

    @st.fragment(run_every=interval)
    def refresh() -> None:
        # Read through the session's own reader first: it refuses a run the user may not see, so
        # the shared cache below only ever serves a run this session may read.
        reader = server.store()
        run = reader.get_run(run_id)
        viewers = run_cache.viewers(run, reader.home)
        drawn = st.session_state.get(live_controls.DRAWN)
        polled = not streamed and poll_seconds(run.status, run.control, viewers, interval) != interval
        if (
            polled
            or _streamed(run) != streamed
            or (drawn is not None and drawn != live_controls.controls_state(run))
        ):
            # Queued to live, paused, ended, a crowd come or gone, a request made elsewhere, a stream
            # that did not connect: redraw the page once, with the controls the run now allows.
            st.rerun()
        if run.is_active and not streamed:
            st.caption(FALLBACK_NOTE)
        live = run_cache.live(run, reader.home)
        frames = live.current(status=run.status.value, control=run.control)
        epochs_planned = run.training().epochs
        # The status and the progress share a row, so the curves start high on a projector's screen.
        if streamed:
            _news(run, frames)  # The status row is the stream's element's, above.
        else:
            status_column, progress_column = st.columns(2, vertical_alignment="center")
            if not said_by_controls(run):  # A request on its way, or a pause, is said by the controls, above.
                with status_column:
                    show_status(run)
            with progress_column:
                _progress(run, epochs_planned, frames)
        if run.traceback:
            with st.expander("Technical details (traceback)"):
                st.code(run.traceback)
        run_health.show_diagnoses(frames.diagnoses, run.status)
        # Only the open tab is drawn: the others' charts are not built, read or sent at all.
        tabs = st.tabs(list(TABS), key="live_tabs", on_change="rerun")

        def curves() -> None:
            if streamed:
                user = identity.current_user().id
                live_chart.curves(reader.home, user, run.id, CURVE_HEIGHT, _no_metrics_message(run))
            else:
                _curves(run, live, frames)

        draw = {
            "Curves": curves,
            "Filters and feature maps": lambda: _filters_and_maps(run, streamed),
            "Confusion and predictions": lambda: _confusion_and_predictions(run, streamed),
            "Layer health": lambda: run_health.layer_health_tab(run),
            "Event log": lambda: _event_log(frames.events),
        }
        for name, tab in zip(TABS, tabs, strict=True):
            if tab.open:
                with tab:
                    draw[name]()
        # Below the charts: the device is worth a glance, not a line above the curves.
        device = records.recorded_device(run.results)
        if device:
            st.caption(f"{'Training' if run.is_active else 'Trained'} on {device}")

    refresh()

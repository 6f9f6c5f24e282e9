"""The components-v2 element that follows a run's stream in the browser (no iframe; `live_run.js`).

Mounted on the Train page, sharing one `EventSource` per run and page:

- `watch` (between the controls and the live view, outside its fragment): the status sentence
  ("Pausing…", "Paused after epoch 3…", "Stopped after epoch 4…", in the page's own words,
  `run_status.SENTENCES`) and the progress bar, drawn from the stream; it tells the page (a trigger,
  `news`, rerunning the whole script once) when the run leaves the statuses it draws itself
  (running, paused: it ended, or it started), never for a pause, a resume or a request on its way.
  It tells the page `fallback` when the stream has said nothing after `FALLBACK_SECONDS` (a proxy
  that buffers it): the page then polls.
- `news` (inside the live view's fragment, drawing nothing): reruns the fragment when a diagnosis
  arrives or, with `rerun_on_snapshot`, a new epoch's snapshot does; never on a timer.
- `controls` (in the controls' row): Stop and Pause or Resume, enabled as the stream's status
  allows, each click sent to the control route with a control token minted for a user who may
  change the run (`cnnlab.ui.stream.routes`); every viewer sees the answer through the stream.
- `figure` (the Filters and Confusion tabs): one snapshot's figure, fetched by its epoch's address
  (`cnnlab.ui.stream.routes`) when the stream announces a newer snapshot; no rerun for it.
- `curves` (the Curves tab): loss, accuracy and learning rate drawn with plotly.js, from the
  layouts and empty traces of `cnnlab.figures.training` (the same titles, axes and colours as the
  charts the page drew before), the batch points appended as they arrive (`Plotly.extendTraces`).

The stream's address carries a token minted for the session's user and the run
(`cnnlab.classroom.stream_tokens`), so the stream route applies the access rule the pages do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import streamlit as st

from cnnlab.classroom.stream_tokens import mint_control_token, mint_stream_token
from cnnlab.store.records import RunRecord
from cnnlab.ui.stream import addresses

if TYPE_CHECKING:
    import plotly.graph_objects as go

NO_CONTROL = "This run is shared with the class: you may watch it but not change it. Fork it to train a copy."
FALLBACK_SECONDS = 6.0  # no history by then: the stream is taken not to connect
CSS = """
.cnnlab-progress { display: flex; flex-direction: column-reverse; gap: 0.5rem; font-size: 0.875rem; }
.cnnlab-bar { height: 0.5rem; border-radius: 0.25rem; background: var(--st-secondary-background-color, #f0f2f6); }
.cnnlab-fill { height: 100%; border-radius: 0.25rem; background: #1c83e1; width: 0; }
.cnnlab-row { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; align-items: center; }
.cnnlab-info { padding: 1rem; border-radius: 0.5rem; background: rgba(28, 131, 225, 0.1); color: rgb(0, 66, 128); }
.cnnlab-curves { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1rem; }
.cnnlab-empty:empty { display: none; }
.cnnlab-figure-caption { font-size: 0.875rem; color: rgba(49, 51, 63, 0.6); margin-bottom: 0.5rem; }
.cnnlab-empty { padding: 1rem; border-radius: 0.5rem; background: rgba(28, 131, 225, 0.1); }
.cnnlab-buttons { display: flex; gap: 0.5rem; }
.cnnlab-button { font: inherit; font-size: 1rem; min-height: 2.5rem; padding: 0.25rem 0.75rem; border-radius: 0.5rem;
  border: 1px solid rgba(49, 51, 63, 0.2); background: #fff; color: #31333F; cursor: pointer; white-space: nowrap; }
.cnnlab-button:hover:enabled { border-color: #ff4b4b; color: #ff4b4b; }
.cnnlab-button:disabled { color: rgba(49, 51, 63, 0.4); cursor: not-allowed; }
.cnnlab-word { font-size: 0.875rem; color: rgba(49, 51, 63, 0.6); }
.cnnlab-error:empty { display: none; }
.cnnlab-error { margin-top: 0.5rem; padding: 0.5rem 1rem; border-radius: 0.5rem; background: rgba(255, 43, 43, 0.09);
  color: rgb(125, 53, 59); font-size: 0.875rem; }
"""


@functools.cache
def _component() -> Callable[..., Any]:
    """The registered component (registered once, when first drawn)."""
    script = (Path(__file__).parent / "live_run.js").read_text(encoding="utf-8")
    return st.components.v2.component("cnnlab_live_run", js=script, css=CSS, isolate_styles=False)


def figure_json(figure: go.Figure, height: int | None = None) -> dict[str, Any]:
    """A figure's traces and layout as plotly.js takes them, themed plainly like the app's charts
    (`height`: pixels, or the figure's own)."""
    # Streamlit's chart theme, as the app's other charts wear it: its type, greys and transparent ground.
    if height is not None:
        figure.update_layout(height=height)
    figure.update_layout(
        template=None,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"family": '"Source Sans Pro", sans-serif', "size": 12, "color": "#31333F"},
        title={"x": 0, "xanchor": "left", "font": {"size": 15, "weight": 600}},
    )
    if figure.layout.legend.orientation == "h":
        # Below the axis title, as in the app's charts (Streamlit's theme makes room for it there).
        figure.update_layout(legend={"y": -0.3, "yanchor": "top"}, margin={"b": 40})
    axes = {"gridcolor": "#e6eaf1", "zeroline": False, "automargin": True, "tickfont": {"color": "#808495"}}
    figure.update_xaxes(**axes, title_font={"color": "#808495"})
    figure.update_yaxes(**axes)
    made = figure.to_plotly_json()
    return {"data": made["data"], "layout": made["layout"]}


@functools.cache
def chart_figures(curve_height: int) -> dict[str, dict[str, Any]]:
    """The curves' layouts and empty traces (batches, train, validation; the learning rate's one)."""
    from cnnlab.figures import training as figures  # pandas and plotly: only where a run is followed

    return {
        "loss": figure_json(figures.live_curves("loss"), curve_height),
        "accuracy": figure_json(figures.live_curves("accuracy"), curve_height),
        "learning_rate": figure_json(figures.live_learning_rate(), 250),
    }


def stream_address(home: Path, user_id: str, run_id: str) -> str:
    """The address of run `run_id`'s stream with a fresh token for `user_id`."""
    token = mint_stream_token(home, user_id, run_id)
    return addresses.RUN_ROUTE.format(run_id=quote(run_id, safe="")) + f"?token={quote(token)}"


def _mount(mode: str, home: Path, user_id: str, run_id: str) -> dict[str, Any]:
    """What every mount of run `run_id`'s stream is drawn with: its mode, the stream it shares with the
    page's other mounts (`stream_key`), and that stream's address with a token for `user_id`."""
    return {"mode": mode, "stream_key": run_id, "stream": stream_address(home, user_id, run_id)}


def watch(
    home: Path,
    user_id: str,
    run_id: str,
    drawn: dict[str, Any],
    *,
    sentence: str,
    words: dict[str, Any],
    on_fallback: Callable[[], None],
) -> Any:
    """The status `sentence` and progress bar of run `run_id`, kept current from its stream with the
    page's `words` (`sentences`: `run_status.SENTENCES`; `teacher`: who a teacher is to this viewer;
    `user_stop_reason`). Mount it outside a fragment: it reruns the page (`drawn`: the status and
    request the page drew) once when the run ends or starts, after saying so."""
    data = {
        **_mount("watch", home, user_id, run_id),
        "sentence": sentence,
        **words,
        "drawn": drawn,
        "fallback_seconds": FALLBACK_SECONDS,
    }
    return _component()(
        key=f"live_watch_{run_id}", data=data, on_news_change=lambda: None, on_fallback_change=on_fallback
    )


def news(home: Path, user_id: str, run_id: str, drawn: dict[str, Any], *, rerun_on_snapshot: bool) -> None:
    """Rerun the fragment this is drawn in for run `run_id`'s news it draws (`drawn`: the diagnoses
    and the snapshot's epoch it shows): a new diagnosis, and with `rerun_on_snapshot` a new snapshot."""
    data = {
        **_mount("news", home, user_id, run_id),
        "drawn": drawn,
        "rerun_on_snapshot": rerun_on_snapshot,
    }
    _component()(key=f"live_news_{run_id}", data=data, on_news_change=lambda: None)


def controls(
    home: Path,
    user_id: str,
    run_id: str,
    status: dict[str, Any],
    *,
    may_control: bool,
    sees_everything: bool,
    held_help: str,
) -> None:
    """Stop and Pause or Resume of run `run_id`, drawn and sent by the browser, enabled as the stream's
    status allows (`status`: the run's as the page read it, `cnnlab.ui.stream.run_feed.status_of`).

    `may_control`: whether the access rule lets `user_id` change the run (only then is a control
    token minted; else the buttons are off). `sees_everything`: a teacher or the local user, who may
    resume a run a teacher paused; `held_help`: why Resume is off for the others.
    """
    data = {
        **_mount("controls", home, user_id, run_id),
        "control": addresses.CONTROL_ROUTE.format(run_id=quote(run_id, safe="")),
        "token": mint_control_token(home, user_id, run_id) if may_control else None,
        "status": status,
        "sees_everything": sees_everything,
        "held_help": held_help,
        "no_token_help": NO_CONTROL,
    }
    _component()(key=f"live_controls_{run_id}", data=data, width="content")


def status_word(home: Path, user_id: str, run_id: str, word: str) -> None:
    """Run `run_id`'s status in one word (`word`: as the page read it), kept current from its stream:
    a Pause or a Resume reruns no page, and the word still changes."""
    data = {
        **_mount("word", home, user_id, run_id),
        "word": word,
    }
    _component()(key=f"live_word_{run_id}", data=data)


def curves(home: Path, user_id: str, run_id: str, curve_height: int, no_metrics: str) -> None:
    """Loss, accuracy and learning rate of run `run_id`, drawn and extended in the browser."""
    from cnnlab.figures.training import DIAGNOSIS_COLOURS

    data = {
        **_mount("curves", home, user_id, run_id),
        "plotly": addresses.PLOTLY_ADDRESS,
        "figures": chart_figures(curve_height),
        "diagnosis_colours": DIAGNOSIS_COLOURS,
        "no_metrics": no_metrics,
    }
    _component()(key=f"live_curves_{run_id}", data=data)


def snapshot_figure(
    home: Path, user_id: str, run_id: str, kind: str, epoch: int, choice: dict[str, str], key: str
) -> None:
    """Run `run_id`'s figure of snapshot `kind` (`choice`: the layer, image or normalisation the user
    picked), drawn from `epoch`'s and then from each newer epoch's as the stream announces it."""
    token = mint_stream_token(home, user_id, run_id)
    run_path = addresses.RUN_ROUTE.format(run_id=quote(run_id, safe=""))
    data = {
        "mode": "figure",
        "stream_key": run_id,
        "stream": f"{run_path}?token={quote(token)}",
        "plotly": addresses.PLOTLY_ADDRESS,
        "address": f"{run_path}/figures/{kind}/",
        "query": "?" + urlencode({**choice, "token": token}),
        "epoch": epoch,
    }
    _component()(key=key, data=data)


CLASS_FALLBACK = "class_stream_fallback"  # session state: the tables whose class stream did not connect


def class_streamed(key: str) -> bool:
    """True unless the class stream of the table `key` did not connect in this session (it polls then)."""
    return key not in st.session_state.get(CLASS_FALLBACK, set())


def _class_fall_back(key: str) -> None:
    st.session_state[CLASS_FALLBACK] = st.session_state.get(CLASS_FALLBACK, set()) | {key}


def watch_class(home: Path, user_id: str, runs: Sequence[RunRecord], key: str, since: float = 0.0) -> None:
    """Rerun the fragment drawing `runs` (a table, a sweep; `key` names it) when the class stream says
    one of them changed (status, request, epochs, best accuracy) or went, or that a run it does not
    draw was created after `since` (0: every run it may show is drawn); at most once a second."""
    token = mint_stream_token(home, user_id, None)
    data = {
        "mode": "class",
        "stream_key": "class",
        "stream": f"{addresses.CLASS_ROUTE}?token={quote(token)}",
        "drawn": {
            run.id: [run.status.value, run.control, run.last_epoch, run.last_val_accuracy] for run in runs
        },
        "since": since,
        "fallback_seconds": FALLBACK_SECONDS,
    }
    _component()(
        key=f"class_watch_{key}",
        data=data,
        on_news_change=lambda: None,
        on_fallback_change=lambda: _class_fall_back(key),
    )

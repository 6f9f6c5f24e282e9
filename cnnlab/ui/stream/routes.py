"""The HTTP routes of the live streams (the `st.App` of app.py serves them), and plotly.js for them.

- `GET /cnnlab/stream/runs/{run_id}?token=T`: one run's Server-Sent Events (`cnnlab.ui.stream.run_feed`);
- `GET /cnnlab/stream/class?token=T`: the runs the token's user may see (`cnnlab.ui.stream.class_feed`);
- `GET /cnnlab/stream/runs/{run_id}/figures/{kind}/{epoch}?token=T&layer=L&sample=S&normalise=1`: one
  epoch's snapshot figure (`cnnlab.figures.snapshots`) as plotly.js takes it, cached a year, with an ETag;
- `POST /cnnlab/stream/runs/{run_id}/control`, JSON `{"action": "stop" | "pause" | "resume", "token": T}`:
  the live view's buttons (drawn in the browser) ask the run's worker through the server's scheduler,
  as the page's buttons do; the answer is the run's status as its stream says it;
- `GET /cnnlab/static/plotly-<version>.min.js`: the plotly.js the `plotly` package ships, cached a year.

A stream opens with a token the page minted (`cnnlab.classroom.stream_tokens`): a missing, edited or
expired one, one for another run, or a run the token's user may not read (`RunAccess`) gets 403,
with the same words for another student's run as for a missing one. A reconnect's `Last-Event-ID`
resumes after that message (`cnnlab.ui.stream.hub`). A control request needs a control token for
that run (`mint_control_token`), and the token's user must be one `RunAccess` lets change it (a
run a teacher paused is resumed by a teacher only): else 403; a request the run can no longer take
(it has ended) gets 409 with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import plotly
from plotly.utils import PlotlyJSONEncoder
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cnnlab.classroom import joining
from cnnlab.classroom.access import RunAccess
from cnnlab.classroom.stream_tokens import StreamGrant, read_control_token, read_stream_token
from cnnlab.classroom.users import LOCAL_USER, User
from cnnlab.errors import AccessError, CnnLabError, RunError
from cnnlab.runs.queue import scheduler as scheduler_module
from cnnlab.store.run_store import Store, default_home
from cnnlab.ui.stream.addresses import CLASS_ROUTE, CONTROL_ROUTE, FIGURE_ROUTE, PLOTLY_ADDRESS, RUN_ROUTE

if TYPE_CHECKING:
    from cnnlab.ui.stream.hub import Feed, Hub

PLOTLY_FILE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
YEAR = "public, max-age=31536000, immutable"
PING_SECONDS = 15  # a comment line now and then, so idle proxies keep the connection open
REFUSED = "This stream is not one you can open: reload the page (its link may have expired)."
CONTROL_REFUSED = (
    "This run did not take the request: reload the page if it is old, or ask its owner or your teacher."
)
CONTROL_ACTIONS = ("stop", "pause", "resume")


@functools.lru_cache(maxsize=4)
def _store_at(home: str) -> Store:
    return Store(home)


@functools.lru_cache(maxsize=4)
def hub_at(home: str) -> Hub:
    """The one hub of the streams of the runs in `home`."""
    # The streams' modules (pandas among them) are imported by the first stream, not as the server starts.
    from cnnlab.ui.stream.hub import Hub

    return Hub()


def _user(store: Store, user_id: str) -> User:
    """The user a token names, as they are now (a removed user opens nothing)."""
    if user_id == LOCAL_USER.id:
        return LOCAL_USER
    user = joining.stored_user(store.people, user_id)
    if user is None:
        raise AccessError(f"There is no user {user_id!r} any more.")
    return user


def _granted(request: Request, home: Path) -> tuple[StreamGrant, RunAccess]:
    """The token's grant and its user's access; AccessError for a token that opens nothing."""
    grant = read_stream_token(home, request.query_params.get("token", ""))
    store = _store_at(str(home))
    return grant, RunAccess(store, _user(store, grant.user_id))


def _last_event_id(request: Request) -> int | None:
    text = request.headers.get("last-event-id", "")
    return int(text) if text.isdigit() else None


def _stream(request: Request, home: Path, key: tuple[str, ...], make_feed: Callable[[], Feed]) -> Response:
    from cnnlab.ui.stream.hub import frames

    async def content() -> AsyncIterator[bytes]:
        async with hub_at(str(home)).subscription(key, make_feed, _last_event_id(request)) as (
            subscriber,
            first,
        ):
            async for frame in frames(subscriber, first):
                yield frame

    # `X-Accel-Buffering: no` asks nginx, the commonest proxy, not to buffer the stream.
    return EventSourceResponse(content(), ping=PING_SECONDS, headers={"X-Accel-Buffering": "no"})


def _refused() -> Response:
    return PlainTextResponse(REFUSED, status_code=403, headers={"Cache-Control": "no-store"})


def _run_refused(request: Request, home: Path, run_id: str) -> bool:
    """True unless the request's token names run `run_id` for a user who may read it."""
    try:
        grant, access = _granted(request, home)
        if grant.run_id != run_id:
            raise AccessError("This token is for another stream.")
        if _store_at(str(home)).ownership(run_id) is None:
            raise RunError(f"There is no run {run_id!r}.")  # A prefix of an id is not a stream's name.
        access.get_run(run_id)  # AccessError for another student's unshared run.
    except (AccessError, RunError):
        return True
    return False


async def run_stream(request: Request) -> Response:
    """One run's live records as Server-Sent Events, for a token naming this run and a user who may read it."""
    home = default_home()
    run_id = request.path_params["run_id"]
    if _run_refused(request, home, run_id):
        return _refused()
    from cnnlab.ui.stream.run_feed import RunFeed

    store = _store_at(str(home))
    return _stream(request, home, ("run", run_id), lambda: RunFeed(store, run_id))


async def class_stream(request: Request) -> Response:
    """The status, progress and best accuracy of the runs the token's user may see, as Server-Sent Events."""
    home = default_home()
    try:
        grant, access = _granted(request, home)
        if grant.run_id is not None:
            raise AccessError("This token is for one run's stream.")
    except AccessError:
        return _refused()
    # Students see different runs: one watcher per user; a teacher's and the local user's is the class's.
    from cnnlab.ui.stream.class_feed import ClassFeed

    key = ("class", "everything" if access.user.sees_everything else access.user.id)
    return _stream(request, home, key, lambda: ClassFeed(access))


def _control(home: Path, run_id: str, action: str, token: str) -> dict[str, object]:
    """Ask run `run_id` to `action` as the control token's user, through the server's scheduler and
    the access rule; the run's status after, as its stream says it. AccessError when the token or
    the rule refuses, another CnnLabError when the run cannot take the request."""
    from cnnlab.ui.stream.run_feed import status_of

    grant = read_control_token(home, token)
    if grant.run_id != run_id:
        raise AccessError("This control token is for another run.")
    store = _store_at(str(home))
    access = RunAccess(store, _user(store, grant.user_id), scheduler=lambda: scheduler_module.shared(home))
    {"stop": access.stop, "pause": access.pause, "resume": access.resume}[action](run_id)
    read_before = store.run_version(run_id)
    return status_of(store, store.get_run(run_id), read_before)


def _answer(content: object, status_code: int = 200) -> JSONResponse:
    """A control request's JSON answer, never cached."""
    return JSONResponse(content, status_code=status_code, headers={"Cache-Control": "no-store"})


async def control_run(request: Request) -> Response:
    """Stop, pause or resume a run for a control token naming it and a user who may change it."""
    home = default_home()
    try:
        body = await request.json()
    except ValueError:
        body = None
    action = body.get("action") if isinstance(body, dict) else None
    if action not in CONTROL_ACTIONS:
        said = json.dumps(body)[:200] if body is not None else "no JSON"
        message = (
            f'A control request is JSON {{"action": "stop", "pause" or "resume", "token": ...}}; got {said}.'
        )
        return _answer({"error": message}, 400)
    token = str(body.get("token", ""))
    try:
        status = await asyncio.to_thread(_control, home, request.path_params["run_id"], str(action), token)
    except AccessError as error:
        message = f"{CONTROL_REFUSED} ({error})"
        return _answer({"error": message}, 403)
    except CnnLabError as error:
        return _answer({"error": str(error)}, 409)
    return _answer(status)


def figure_body(store: Store, run_id: str, kind: str, epoch: int, query: Mapping[str, str]) -> bytes:
    """The JSON of run `run_id`'s figure of `kind` at `epoch` for the user's choice in `query` (layer,
    sample, normalise), themed as the live view draws it; RunError or KeyError for a snapshot, layer
    or image the run did not record."""
    from cnnlab.figures.snapshots import FigureChoice, snapshot_figure
    from cnnlab.ui.stream.live_chart import figure_json

    choice = FigureChoice(
        layer=query.get("layer", ""),
        sample=int(query["sample"]) if query.get("sample", "").isdigit() else 0,
        normalise=query.get("normalise") == "1",
    )
    panel_epochs = store.snapshot_epochs(run_id, "panel")
    panel = store.read_snapshot(run_id, panel_epochs[0], "panel") if panel_epochs else None
    figure = snapshot_figure(kind, store.read_snapshot(run_id, epoch, kind), panel, choice)
    return json.dumps(figure_json(figure), cls=PlotlyJSONEncoder).encode()


async def snapshot_figure(request: Request) -> Response:
    """One epoch's snapshot figure of a run, for a token that opens the run's stream.

    An ended epoch's snapshot never changes and the address names the epoch: cached a year, with an
    ETag (its content's hash) for a browser that asks again."""
    home = default_home()
    params = request.path_params
    run_id, kind, epoch = params["run_id"], params["kind"], params["epoch"]
    if _run_refused(request, home, run_id):
        return _refused()
    try:
        body = figure_body(_store_at(str(home)), run_id, kind, epoch, request.query_params)
    except (RunError, KeyError, IndexError):
        return PlainTextResponse("No such figure.", status_code=404, headers={"Cache-Control": "no-store"})
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"Cache-Control": YEAR, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


async def plotly_script(request: Request) -> Response:
    """The plotly.js of the installed `plotly` package; its address names the version, so it is cached a year."""
    return FileResponse(
        PLOTLY_FILE,
        media_type="text/javascript",
        headers={"Cache-Control": YEAR},
    )


ROUTES = [
    Route(RUN_ROUTE, run_stream, methods=["GET"]),
    Route(FIGURE_ROUTE, snapshot_figure, methods=["GET"]),
    Route(CONTROL_ROUTE, control_run, methods=["POST"]),
    Route(CLASS_ROUTE, class_stream, methods=["GET"]),
    Route(PLOTLY_ADDRESS, plotly_script, methods=["GET"]),
]
"""The routes app.py gives its `st.App`."""

"""The live streams without a browser: tokens, access (403), the watcher's fan-out, resume by id,
what the class stream tells whom.

The routes are asked through Starlette's test client where the answer is a refusal; the streams
themselves through a real server (uvicorn in a thread) and an HTTP client reading the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import uvicorn
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for `httpx2` over the installed `httpx`.
    from starlette.testclient import TestClient

from cnnlab.classroom.access import RunAccess
from cnnlab.classroom.stream_tokens import mint_stream_token, read_stream_token
from cnnlab.classroom.users import Role, User
from cnnlab.errors import AccessError
from cnnlab.figures import training as figures
from cnnlab.store.people import StoredUser
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.stream import addresses, routes
from cnnlab.ui.stream.class_feed import ClassFeed
from cnnlab.ui.stream.hub import Hub
from cnnlab.ui.stream.run_feed import RunFeed
from tests.made_runs import make_run, reached
from tests.ports import free_port


def _student(store: Store, name: str) -> User:
    store.people.add_user(
        StoredUser(f"user-{name}", name, name.casefold(), "student", None, None, time.time())
    )
    return User(f"user-{name}", name, Role.STUDENT)


def _running(store: Store, owner: str = "local") -> str:
    return reached(store, make_run(store, owner=owner, status=Status.STARTING).id, Status.RUNNING).id


def _batch(store: Store, run_id: str, step: int) -> None:
    store.add_batch_metrics(run_id, [{"epoch": 1, "batch": step, "step": step, "loss": 1 / (step + 1)}])


def test_a_token_opens_its_run_until_it_expires_and_not_once_edited(home_store: Store) -> None:
    home = home_store.home
    token = mint_stream_token(home, "user-ada", "run-1", ttl_seconds=60)
    grant = read_stream_token(home, token)
    assert (grant.user_id, grant.run_id) == ("user-ada", "run-1")
    assert read_stream_token(home, mint_stream_token(home, "local", None)).run_id is None
    payload, signature = token.split(".")
    other = mint_stream_token(home, "user-ada", "run-2").split(".")[0]
    for edited in (f"{other}.{signature}", f"{payload}.{signature[:-2]}AA", payload, ""):
        with pytest.raises(AccessError):
            read_stream_token(home, edited)
    with pytest.raises(AccessError, match="expired"):
        read_stream_token(home, token, now=time.time() + 61)
    # Another server (another home, another key) does not take it.
    with pytest.raises(AccessError, match="changed or made by another server"):
        read_stream_token(home / "elsewhere", token)


def test_the_run_route_refuses_what_the_token_does_not_open(home_store: Store) -> None:
    ada, grace = _student(home_store, "Ada"), _student(home_store, "Grace")
    adas, graces = _running(home_store, ada.id), _running(home_store, grace.id)
    client = TestClient(Starlette(routes=routes.ROUTES))

    def status(run_id: str, token: str) -> int:
        return client.get(f"/cnnlab/stream/runs/{run_id}", params={"token": token}).status_code

    home = home_store.home
    # Grace's run with Ada's token for it, Ada's token for her own run used on Grace's, a prefix, none.
    assert status(graces, mint_stream_token(home, ada.id, graces)) == 403
    assert status(graces, mint_stream_token(home, ada.id, adas)) == 403
    assert status(adas[:8], mint_stream_token(home, ada.id, adas[:8])) == 403
    assert status(adas, "") == 403
    assert status(adas, mint_stream_token(home, ada.id, adas, ttl_seconds=-1)) == 403
    # A class token is not a run's, and a run's not the class's.
    assert status(adas, mint_stream_token(home, ada.id, None)) == 403
    assert (
        client.get(
            "/cnnlab/stream/class", params={"token": mint_stream_token(home, ada.id, adas)}
        ).status_code
        == 403
    )
    # plotly.js, cached for a year under its version's address.
    script = client.get(addresses.PLOTLY_ADDRESS)
    assert script.status_code == 200 and "immutable" in script.headers["cache-control"]


def test_an_epochs_figure_is_served_to_its_runs_token_cached_and_drawn_as_the_page_draws_it(
    home_store: Store,
) -> None:
    ada, grace = _student(home_store, "Ada"), _student(home_store, "Grace")
    adas, graces = _running(home_store, ada.id), _running(home_store, grace.id)
    kernel = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4) / 10 - 3
    home_store.write_snapshot(adas, 2, "kernels", {"conv_1": kernel})
    matrix = np.array([[5, 1], [2, 7]])
    home_store.write_snapshot(
        adas, 2, "confusion", {"matrix": matrix, "class_names": np.array(["cat", "<b>dog</b>"])}
    )
    client = TestClient(Starlette(routes=routes.ROUTES))
    home = home_store.home

    def get(run_id: str, kind: str, token: str, **query: str) -> httpx.Response:
        return client.get(f"/cnnlab/stream/runs/{run_id}/figures/{kind}/2", params={"token": token, **query})

    token = mint_stream_token(home, ada.id, adas)
    kernels = get(adas, "kernels", token, layer="conv_1")
    assert kernels.status_code == 200
    assert kernels.headers["cache-control"] == "public, max-age=31536000, immutable"
    # The figure the page draws for the stored (float16) snapshot: the same traces and title.
    stored = home_store.read_snapshot(adas, 2, "kernels")["conv_1"]
    expected = json.loads(figures.kernels(stored, layer="conv_1").to_json())
    assert kernels.json()["data"] == expected["data"]
    assert kernels.json()["layout"]["title"]["text"] == expected["layout"]["title"]["text"]
    shares = get(adas, "confusion", token, normalise="1").json()["data"][0]
    assert shares["text"] == [["0.83", "0.17"], ["0.22", "0.78"]] and shares["x"] == [
        "cat",
        "&lt;b&gt;dog&lt;/b&gt;",
    ]  # shown as text
    assert get(adas, "confusion", token).json()["data"][0]["text"] == [["5", "1"], ["2", "7"]]
    # The feature maps of a panel image, and the panel's predictions: the page's figures too.
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1) * 8
    panel = {"images": images, "labels": np.array([0, 1]), "class_names": np.array(["cat", "dog"])}
    home_store.write_snapshot(adas, 1, "panel", panel)
    ramp = np.arange(4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
    maps = np.stack([ramp, ramp[::-1]])  # two images whose maps differ, each scaled to its own range
    home_store.write_snapshot(adas, 2, "feature_maps", {"conv_1": maps})
    home_store.write_snapshot(adas, 2, "predictions", {"panel": np.array([[0.9, 0.1], [0.8, 0.2]])})
    stored_maps = home_store.read_snapshot(adas, 2, "feature_maps")["conv_1"]
    drawn_maps = get(adas, "feature_maps", token, layer="conv_1", sample="1").json()["data"]
    assert drawn_maps == json.loads(figures.feature_maps(stored_maps[1], layer="conv_1").to_json())["data"]
    assert drawn_maps != json.loads(figures.feature_maps(stored_maps[0], layer="conv_1").to_json())["data"]
    titles = [note["text"] for note in get(adas, "predictions", token).json()["layout"]["annotations"]]
    assert titles == ["✓ cat 90%", "✗ cat 80% (is dog)"]
    # Asked again with its ETag: not sent again.
    again = client.get(kernels.url, headers={"If-None-Match": kernels.headers["etag"]})
    assert again.status_code == 304 and not again.content
    # Another run's token, Ada's token on Grace's run, an edited token: refused; no such epoch: 404.
    assert get(adas, "kernels", mint_stream_token(home, ada.id, graces), layer="conv_1").status_code == 403
    assert get(graces, "kernels", mint_stream_token(home, ada.id, graces), layer="conv_1").status_code == 403
    assert get(adas, "kernels", token[:-2] + "AA", layer="conv_1").status_code == 403
    assert get(adas, "kernels", token, layer="conv_9").status_code == 404
    assert (
        client.get(f"/cnnlab/stream/runs/{adas}/figures/kernels/3", params={"token": token}).status_code
        == 404
    )


@pytest.fixture
def served(home_store: Store) -> Iterator[str]:
    """The stream routes on a real server (uvicorn in a thread); its address."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes.ROUTES), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def _events(lines: Iterator[str], count: int) -> list[tuple[str, str, dict]]:
    """The next `count` events of an open stream's lines: (id, event, data)."""
    found: list[tuple[str, str, dict]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                found.append((fields["id"], fields["event"], json.loads(fields["data"])))
                if len(found) == count:
                    return found
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return found


def test_single_user_mode_needs_no_sign_in_and_a_reconnect_resumes(home_store: Store, served: str) -> None:
    run_id = _running(home_store)
    _batch(home_store, run_id, 0)
    address = f"{served}/cnnlab/stream/runs/{run_id}"
    params = {"token": mint_stream_token(home_store.home, "local", run_id)}
    with httpx.Client(timeout=10) as client, client.stream("GET", address, params=params) as staying:
        assert staying.headers["content-type"].startswith("text/event-stream")
        stays = staying.iter_lines()
        [(_, event, history)] = _events(stays, 1)
        assert event == "history" and history["status"]["status"] == "running"
        assert [row["step"] for row in history["batches"]] == [0]
        with client.stream("GET", address, params=params) as leaving:
            leaves = leaving.iter_lines()
            assert _events(leaves, 1)[0][1] == "history"
            _batch(home_store, run_id, 1)
            [(seen_id, event, rows)] = _events(leaves, 1)
            assert event == "metrics" and [row["step"] for row in rows] == [1]
            assert rows[0]["written_at"] > 0
        # Gone for two batches and a stop request, which the staying subscriber sees.
        assert _events(stays, 1)[0][0] == seen_id
        _batch(home_store, run_id, 2)
        _batch(home_store, run_id, 3)
        home_store.request_control(run_id, "stop")
        missed: list[tuple[str, str, dict]] = []

        def all_missed() -> bool:
            steps = {row["step"] for _, event, data in missed if event == "metrics" for row in data}
            return steps == {2, 3} and any(data.get("control") == "stop" for _, event, data in missed)

        while not all_missed():
            missed += _events(stays, 1)
        # Back with the id of the last event it saw, it gets those it missed, no history.
        with client.stream("GET", address, params=params, headers={"Last-Event-ID": seen_id}) as back:
            assert _events(back.iter_lines(), len(missed)) == missed


def test_one_store_read_per_tick_whatever_the_number_of_subscribers(home_store: Store) -> None:
    run_id = _running(home_store)
    feed = RunFeed(home_store, run_id)

    async def follow() -> list[list[str]]:
        hub = Hub(tick_seconds=3600)  # The test ticks the watcher itself.
        async with contextlib.AsyncExitStack() as stack:
            subscribers = []
            for _ in range(50):
                subscriber, first = await stack.enter_async_context(
                    hub.subscription(("run", run_id), lambda: feed)
                )
                assert [sent.event for sent in first] == ["history"]
                subscribers.append(subscriber)
            watcher = hub.watchers[("run", run_id)]
            for step in range(3):
                _batch(home_store, run_id, step)
                await watcher.step()
            await watcher.step()  # Nothing new: a read, no message.
            received = [
                [subscriber.queue.get_nowait().event for _ in range(subscriber.queue.qsize())]
                for subscriber in subscribers
            ]
        assert not hub.watchers  # The last subscriber out stopped the watcher.
        return received

    received = asyncio.run(follow())
    # Four ticks, four reads of the run's version, for fifty subscribers; each got the three batches.
    assert feed.reads == 4
    assert received == [["metrics"] * 3] * 50


def test_the_class_stream_tells_a_student_only_their_runs_and_shared_ones(home_store: Store) -> None:
    ada, grace = _student(home_store, "Ada"), _student(home_store, "Grace")
    adas, graces = _running(home_store, ada.id), _running(home_store, grace.id)
    feed = ClassFeed(RunAccess(home_store, ada))
    assert [row["id"] for row in feed.history()["runs"]] == [adas]
    assert feed.tick() == []
    home_store.add_epoch_metrics(adas, {"epoch": 1, "loss": 0.5, "val_accuracy": 0.75})
    home_store.add_epoch_metrics(graces, {"epoch": 1, "loss": 0.5})
    [news] = feed.tick()
    assert news.event == "runs" and [
        (row["id"], row["last_epoch"], row["best_val_accuracy"]) for row in news.data
    ] == [(adas, 1, 0.75)]
    home_store.set_shared(graces, True)  # A teacher shared Grace's run: the class sees it.
    assert [row["id"] for row in feed.tick()[0].data] == [graces]
    # The teacher's class stream has every run.
    teacher = ClassFeed(RunAccess(home_store, User("user-teacher", "Teacher", Role.TEACHER)))
    assert {row["id"] for row in teacher.history()["runs"]} == {adas, graces}


def test_a_deleted_run_is_said_once(home_store: Store) -> None:
    run_id = _running(home_store)
    feed = RunFeed(home_store, run_id)
    home_store.set_status(run_id, Status.STOPPED)
    assert [message.data["status"] for message in feed.tick() if message.event == "status"] == ["stopped"]
    home_store.delete_run(run_id)
    [said] = feed.tick()
    assert (said.event, said.data["status"], said.data["active"]) == ("status", "deleted", False)
    assert feed.tick() == []


def test_a_read_that_fails_loses_nothing_and_the_stream_goes_on(
    home_store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A busy database for one tick (here: its event read fails after the batches were read) is read
    again at the next: the watcher keeps running and its viewers get every batch and the new status.
    Before, the watcher's task ended on the error and its viewers waited for news for ever."""
    run_id = _running(home_store)
    feed = RunFeed(home_store, run_id)
    reads_of_events = home_store.events
    failures = iter([sqlite3.OperationalError("database is locked")])

    def events_once_locked(read_run: str) -> object:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return reads_of_events(read_run)

    monkeypatch.setattr(home_store, "events", events_once_locked)

    async def follow() -> list[tuple[str, object]]:
        hub = Hub(tick_seconds=0.01)
        async with hub.subscription(("run", run_id), lambda: feed) as (subscriber, _first):
            for step in range(3):
                _batch(home_store, run_id, step)
            home_store.request_control(run_id, "pause")
            home_store.set_status(run_id, Status.PAUSED)  # also logs an event: the read that fails
            received: list[tuple[str, object]] = []
            while not any(event == "status" for event, _ in received) or not subscriber.queue.empty():
                # A tick's messages are queued together: the status comes first, its batches after.
                sent = await asyncio.wait_for(subscriber.queue.get(), timeout=10)
                assert sent is not None
                received.append((sent.event, json.loads(sent.frame.decode().split("data: ", 1)[1])))
            return received

    with caplog.at_level(logging.ERROR, logger="cnnlab.ui.stream.hub"):
        received = asyncio.run(follow())
    assert next(failures, None) is None, "the event read never failed: the test checked nothing"
    assert ["A live stream's read failed" in record.getMessage() for record in caplog.records] == [True]
    steps = [row["step"] for event, rows in received if event == "metrics" for row in rows]  # type: ignore[attr-defined]
    assert steps == [0, 1, 2]
    assert [data["status"] for event, data in received if event == "status"] == ["paused"]  # type: ignore[index]

"""The class benchmark's stream subscriber reads Server-Sent Events as a browser's EventSource does.

A small Starlette app (served in process through httpx's ASGI transport) sends a `history`, a
`metrics` event whose rows say when the worker wrote them, and a `status`; then ends the response.
The subscriber must note each row's delay, keep the status, and reconnect with the last event id,
as an EventSource does; the app refuses the second connection, which ends the subscriber.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from benchmarks.stream_subscribers import StreamSubscriber, written_times


def _stream_app(written_at: float, asked: list[str | None]) -> Starlette:
    async def events(request: Request) -> Response:
        asked.append(request.headers.get("last-event-id"))
        if len(asked) > 1:
            return Response(status_code=403)
        rows = [
            {"step": 1, "loss": 2.3, "written_at": written_at},
            {"step": 2, "loss": 2.1, "written_at": written_at},
        ]
        body = [
            'retry: 10\nid: 1\nevent: history\ndata: {"metrics": []}\n\n',
            f"id: 2\nevent: metrics\ndata: {json.dumps(rows)}\n\n",
            ": a comment line keeps a connection open\n\n",
            'id: 3\nevent: status\ndata: {"status":\ndata:  "stopped"}\n\n',
        ]

        async def chunks() -> AsyncIterator[str]:
            for chunk in body:
                yield chunk

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return Starlette(routes=[Route("/cnnlab/stream/runs/{run_id}", events)])


def test_a_subscriber_notes_delays_and_statuses_and_resumes_from_the_last_event() -> None:
    asked: list[str | None] = []
    written_at = time.time() - 0.25  # The worker wrote the rows a quarter of a second ago.

    async def subscribe() -> StreamSubscriber:
        transport = httpx.ASGITransport(app=_stream_app(written_at, asked))
        async with httpx.AsyncClient(transport=transport, base_url="http://class") as client:
            subscriber = StreamSubscriber(client, "http://class/cnnlab/stream/runs/abc?token=t")
            await asyncio.wait_for(subscriber.run(), timeout=10)
            return subscriber

    subscriber = asyncio.run(subscribe())
    log = subscriber.log
    assert asked == [None, "3"]  # Reconnected once, from the last event it had.
    assert log.refusals == [403]
    assert dict(log.counts) == {"history": 1, "metrics": 1, "status": 1}
    assert len(log.delays) == 2
    assert all(0.25 <= delay < 5 for delay in log.delays)
    assert [json.loads(event.data) for event in log.statuses] == [{"status": "stopped"}]


def test_a_refused_subscriber_notes_the_refusal_and_is_not_connected() -> None:
    asked: list[str | None] = [None]  # As if it had connected once already: the app refuses it.

    async def subscribe() -> tuple[bool, StreamSubscriber]:
        transport = httpx.ASGITransport(app=_stream_app(time.time(), asked))
        async with httpx.AsyncClient(transport=transport, base_url="http://class") as client:
            subscriber = StreamSubscriber(client, "http://class/cnnlab/stream/runs/abc?token=t")
            subscriber.start()
            connected = await subscriber.wait_until_connected(timeout=10)
            await subscriber.close()
            return connected, subscriber

    connected, subscriber = asyncio.run(subscribe())
    assert not connected
    assert subscriber.log.refusals == [403]
    assert not subscriber.log.counts


def test_written_times_are_found_in_rows_and_inside_objects() -> None:
    assert written_times([{"written_at": 1.5}, {"written_at": 2}]) == [1.5, 2.0]
    assert written_times({"rows": [{"written_at": 3.0, "loss": 1}], "epoch": 4}) == [3.0]
    assert written_times({"loss": 1.0}) == []

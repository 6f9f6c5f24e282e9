"""A run's live stream as a browser's EventSource reads it, without a browser.

`StreamSubscriber` opens a Server-Sent Events URL (`/cnnlab/stream/runs/<run id>?token=...`) with
httpx, parses the events (`event:`, `data:`, `id:`, `retry:` lines, a blank line ends one) and, as an
EventSource does, reconnects after a dropped connection with `Last-Event-ID` so the server resumes
where it left off. For each event it notes the arrival time; for every record in a `metrics` event
that says when the worker wrote it (`written_at`, seconds since the epoch) it notes the delay from
that moment to the arrival, and it keeps the `status` events' data with their arrival times; a
`listener` hears every event (as the page's own code listens to its EventSource).

Thousands of subscribers share one `httpx.AsyncClient` (no connection limit) in one asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

RECONNECT_SECONDS = 1.0  # an EventSource's default wait before it reconnects, unless the server sets `retry:`


@dataclass
class ServerEvent:
    """One Server-Sent Event as it arrived."""

    kind: str
    data: str
    event_id: str
    arrived_at: float


@dataclass
class StreamLog:
    """What one subscriber received; times in seconds since the epoch."""

    connected_at: list[float] = field(default_factory=list)  # each connection answered with 200
    refusals: list[int] = field(default_factory=list)  # HTTP statuses of refused connections
    errors: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # events per kind
    delays: list[float] = field(default_factory=list)  # written_at -> arrival, per record of `metrics` events
    statuses: list[ServerEvent] = field(default_factory=list)
    last_event_id: str = ""


def written_times(payload: Any) -> list[float]:
    """Every `written_at` number in a decoded JSON payload (a list of rows, or rows inside an object)."""
    if isinstance(payload, dict):
        found = [float(payload["written_at"])] if isinstance(payload.get("written_at"), int | float) else []
        return found + [moment for value in payload.values() for moment in written_times(value)]
    if isinstance(payload, list):
        return [moment for value in payload for moment in written_times(value)]
    return []


class StreamSubscriber:
    """One EventSource on one stream URL (see the module's docstring); `run()` until `close()`."""

    def __init__(
        self, client: httpx.AsyncClient, url: str, listener: Callable[[ServerEvent], None] | None = None
    ) -> None:
        self.client, self.url, self.listener = client, url, listener
        self.log = StreamLog()
        self.connected = asyncio.Event()
        self._closed = False
        self._retry_seconds = RECONNECT_SECONDS
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Run the subscriber in the current loop's background; the task ends after `close()`."""
        self._task = asyncio.create_task(self.run())
        return self._task

    async def wait_until_connected(self, timeout: float) -> bool:
        """Wait until the stream has answered with 200; False if it refused or did not answer in time."""
        connected = asyncio.create_task(self.connected.wait())
        waiting = {connected} if self._task is None else {connected, self._task}
        await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        connected.cancel()
        return self.connected.is_set()

    async def close(self) -> None:
        """Stop reading and close the connection."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        """Read the stream, reconnecting with Last-Event-ID as an EventSource does, until closed or refused."""
        while not self._closed:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if self.log.last_event_id:
                headers["Last-Event-ID"] = self.log.last_event_id
            try:
                async with self.client.stream("GET", self.url, headers=headers) as response:
                    if response.status_code != 200:
                        self.log.refusals.append(response.status_code)
                        return  # An EventSource gives up on a refusal too.
                    self.log.connected_at.append(time.time())
                    self.connected.set()
                    await self._read(response)
            except httpx.HTTPError as error:
                self.log.errors.append(f"{type(error).__name__}: {error}")
            await asyncio.sleep(self._retry_seconds)

    async def _read(self, response: httpx.Response) -> None:
        kind, event_id = "message", ""
        data: list[str] = []
        async for line in response.aiter_lines():
            if line == "":
                if data:
                    self._arrived(ServerEvent(kind, "\n".join(data), event_id, time.time()))
                kind, data, event_id = "message", [], ""
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
            elif name == "retry" and value.isdigit():
                self._retry_seconds = int(value) / 1000

    def _arrived(self, event: ServerEvent) -> None:
        self.log.counts[event.kind] += 1
        if event.event_id:
            self.log.last_event_id = event.event_id
        if event.kind == "metrics":
            with contextlib.suppress(ValueError):
                written = written_times(json.loads(event.data))
                self.log.delays.extend(event.arrived_at - moment for moment in written)
        elif event.kind == "status":
            self.log.statuses.append(event)
        if self.listener is not None:
            self.listener(event)

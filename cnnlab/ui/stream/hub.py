"""One watcher per stream on the server, shared by all its subscribers.

A `Watcher` is an asyncio task that, every `tick_seconds`, asks its feed for news once (in a thread:
the store is SQLite on disk) and fans each message out to every subscriber's queue. The message is
encoded as a Server-Sent Event once, so a viewer more costs the server one queue put and one
socket write per message, and nothing else. The `Hub` starts a stream's watcher when its first
subscriber comes and stops it when the last one leaves.

Every message has an id, increasing across the server's life (they start from the clock, so they
keep increasing across a restart). A watcher keeps its latest messages: a subscriber that comes
back with the id of the last message it saw (`Last-Event-ID`) gets those after it, or the whole
history again if they are no longer held.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

from sse_starlette.event import ServerSentEvent

from cnnlab.ui.stream.run_feed import Json, Message

TICK_SECONDS = 0.1  # how often a watcher reads its stream's news (one indexed query, however many viewers)
BACKLOG = 2_000  # messages a watcher keeps for subscribers that reconnect
QUEUE_LIMIT = 5_000  # messages a subscriber may fall behind before it is closed (it reconnects and resumes)

_log = logging.getLogger(__name__)
_ids = itertools.count(int(time.time() * 1000))  # every message's id, increasing across restarts


class Feed(Protocol):
    """What a watcher reads: the whole stream for a newcomer, and the news of each tick."""

    reads: int

    def history(self) -> dict[str, Json]:
        """Everything a newcomer needs, as the first message."""
        ...

    def tick(self) -> list[Message]:
        """Read the store once; what changed since the last tick."""
        ...


@dataclass(frozen=True)
class Envelope:
    """A message with its id, encoded once as the bytes of a Server-Sent Event."""

    id: int
    event: str
    frame: bytes


def envelope(message: Message, message_id: int | None = None) -> Envelope:
    """`message` numbered (the next id unless given) and encoded as a Server-Sent Event."""
    number = next(_ids) if message_id is None else message_id
    text = json.dumps(message.data, separators=(",", ":"), allow_nan=False)
    return Envelope(
        number, message.event, ServerSentEvent(data=text, event=message.event, id=str(number)).encode()
    )


@dataclass(eq=False)
class Subscriber:
    """One open stream: the messages waiting to be sent (None: close it, it fell too far behind)."""

    queue: asyncio.Queue[Envelope | None] = field(default_factory=asyncio.Queue)


class Watcher:
    """The task that reads one stream's feed every tick and fans the news out."""

    def __init__(self, feed: Feed, tick_seconds: float) -> None:
        self.feed = feed
        self.tick_seconds = tick_seconds
        self.subscribers: set[Subscriber] = set()
        self.last_id = next(_ids)  # the id of the newest message the feed's history includes
        self.forgotten_through = self.last_id  # messages up to this id are no longer held
        self.backlog: deque[Envelope] = deque(maxlen=BACKLOG)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the reading task on the running loop."""
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                await self.step()
                failing = False
            except Exception:
                # A read that fails (the database busy, a file being replaced) must not end the stream:
                # its viewers would wait for news for ever. Said once per spell; the next tick reads again.
                if not failing:
                    _log.exception("A live stream's read failed; it reads again at the next tick.")
                failing = True

    async def step(self) -> None:
        """One tick: read the feed's news once (in a thread) and fan each message out."""
        for message in await asyncio.to_thread(self.feed.tick):
            self.publish(envelope(message))

    def publish(self, sent: Envelope) -> None:
        """Keep `sent` for reconnecting subscribers and put it in every subscriber's queue."""
        if len(self.backlog) == self.backlog.maxlen:
            self.forgotten_through = self.backlog[0].id
        self.backlog.append(sent)
        self.last_id = sent.id
        for subscriber in list(self.subscribers):
            if subscriber.queue.qsize() >= QUEUE_LIMIT:
                self.subscribers.discard(subscriber)
                subscriber.queue.put_nowait(None)
            else:
                subscriber.queue.put_nowait(sent)

    def join(self, last_event_id: int | None) -> tuple[Subscriber, list[Envelope]]:
        """A new subscriber and what it gets first: the messages after `last_event_id` when they are
        all held, else the history (with the id of the newest message it includes)."""
        subscriber = Subscriber()
        if last_event_id is not None and self.forgotten_through <= last_event_id <= self.last_id:
            first = [sent for sent in self.backlog if sent.id > last_event_id]
        else:
            first = [envelope(Message("history", self.feed.history()), self.last_id)]
        self.subscribers.add(subscriber)
        return subscriber, first

    async def stop(self) -> None:
        """Stop reading (the last subscriber left)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class Hub:
    """The watchers of one server, by stream key: started by the first subscriber, stopped by the last."""

    def __init__(self, tick_seconds: float = TICK_SECONDS) -> None:
        self.tick_seconds = tick_seconds
        self.watchers: dict[Hashable, Watcher] = {}
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def subscription(
        self, key: Hashable, make_feed: Callable[[], Feed], last_event_id: int | None = None
    ) -> AsyncIterator[tuple[Subscriber, list[Envelope]]]:
        """Subscribe to the stream `key` (its feed made by `make_feed`, in a thread, if no watcher
        reads it yet): the subscriber and its first messages; unsubscribed on leaving the block."""
        async with self._lock:
            watcher = self.watchers.get(key)
            if watcher is None:
                watcher = Watcher(await asyncio.to_thread(make_feed), self.tick_seconds)
                self.watchers[key] = watcher
                watcher.start()
            subscriber, first = watcher.join(last_event_id)
        try:
            yield subscriber, first
        finally:
            watcher.subscribers.discard(subscriber)
            if not watcher.subscribers and self.watchers.get(key) is watcher:
                del self.watchers[key]
                await watcher.stop()


async def frames(subscriber: Subscriber, first: list[Envelope]) -> AsyncIterator[bytes]:
    """The bytes to send a subscriber: its first messages, then each message as it comes, until closed."""
    for sent in first:
        yield sent.frame
    while True:
        news = await subscriber.queue.get()
        if news is None:
            return
        yield news.frame

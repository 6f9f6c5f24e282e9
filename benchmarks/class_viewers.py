"""N students following a run without N browsers: protocol-level tabs, each with its stream subscriber.

`ViewerCrowd` keeps one asyncio loop on a thread of its own (so Playwright's synchronous API keeps
the main thread) and, on it, N `Viewer`s: a `PageSession` that opens `/train?run=R` as a browser tab
does and a `StreamSubscriber` on the run's live stream, at the address (token included) the page
gave its live components, as their code opens it. A viewer also does what the page's "watch"
component does in a browser (`cnnlab/ui/stream/live_run.js`): when the stream says the run's status
or pending request differs from what the page drew and the run left the statuses the component
draws itself (running, paused: it ended, or it started), or brings a diagnosis or snapshot the page
has not drawn, it sends the component's `news` event, which reruns the page. Tabs are opened a few at a
time, as a class arrives; following another run closes them and opens new ones (a student opening
a link). `figures()` sums what the viewers saw since `start_window()`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from benchmarks.process_figures import percentile
from benchmarks.stream_subscribers import ServerEvent, StreamSubscriber
from benchmarks.streamlit_protocol import PageSession

Result = TypeVar("Result")
PAGE_TIMEOUT_SECONDS = 300.0


DRAWN_HERE = {"running", "paused"}  # the statuses the watch component draws without a rerun (live_run.js)
NEWS_DELAY_SECONDS = 0.05  # the watch component tells the page the news of one moment in one rerun


class Viewer:
    """One student's tab on a run: the page's session and, where a stream exists, its subscriber,
    with the page's watch component's part in between (see the module's docstring)."""

    def __init__(self, session: PageSession) -> None:
        self.session = session
        self.subscriber: StreamSubscriber | None = None
        self.news_sent = 0
        self._news_pending = False

    def stream_address(self, run_id: str) -> str | None:
        """The stream address (with its token) the page gave its live components for `run_id`, if any."""
        for component in self.session.components.values():
            data = component.data
            if (
                isinstance(data, dict)
                and data.get("stream_key") == run_id
                and isinstance(data.get("stream"), str)
            ):
                return str(data["stream"])
        return None

    def heard(self, event: ServerEvent) -> None:
        """The watch component's part: tell the page (one `news` event) what it has not drawn yet."""
        try:
            data = json.loads(event.data)
        except ValueError:
            return
        for component in list(self.session.components.values()):
            watch = component.data
            if (
                isinstance(watch, dict)
                and watch.get("mode") in ("watch", "news")
                and _is_news(event.kind, data, watch)
            ):
                self._tell_page(component.component_id, event.kind)

    def _tell_page(self, component_id: str, reason: str) -> None:
        if self._news_pending:
            return
        self._news_pending = True

        async def later() -> None:
            await asyncio.sleep(NEWS_DELAY_SECONDS)
            self._news_pending = False
            if component_id in self.session.components:
                self.news_sent += 1
                await self.session.trigger(component_id, "news", {"reason": reason, "at": time.time() * 1000})

        asyncio.get_running_loop().create_task(later())


def _is_news(kind: str, data: Any, watch: dict[str, Any]) -> bool:
    """Whether a stream event tells a watch component ("watch": a status; "news": a diagnosis or a
    snapshot) something the page has not drawn (`watch["drawn"]`)."""
    drawn = watch.get("drawn") or {}
    if not isinstance(data, dict):
        return False
    status = data.get("status") if kind == "history" else data if kind == "status" else None
    if watch.get("mode") == "watch":
        return isinstance(status, dict) and _status_news(status, drawn)
    if kind == "history":
        return len(data.get("diagnoses") or []) > int(drawn.get("diagnoses") or 0)
    if kind == "diagnosis":
        return int(data.get("index", -1)) >= int(drawn.get("diagnoses") or 0)
    if kind == "snapshot":
        return bool(watch.get("rerun_on_snapshot")) and data.get("epoch") != drawn.get("snapshot")
    return False


def _status_news(status: dict[str, Any], drawn: dict[str, Any]) -> bool:
    """Whether the stream's `status` reruns a page that drew `drawn` (not a pause, a resume or a request
    on its way: the component draws those, `DRAWN_HERE`)."""
    if status.get("status") != drawn.get("status") or (status.get("control") or None) != (
        drawn.get("control") or None
    ):
        return not {status.get("status"), drawn.get("status")} <= DRAWN_HERE
    return False


@dataclass
class Opened:
    """How opening a crowd's tabs went: seconds from asking to the page's first full run, per tab."""

    seconds: list[float]
    failed: int  # tabs whose page did not finish within PAGE_TIMEOUT_SECONDS
    subscribed: int  # tabs whose stream answered
    from_page: int  # tabs whose stream address (and token) came from the page's components
    exceptions: list[str]


def says_status(data: str, status: str) -> bool:
    """Whether a `status` event's data (JSON: {"status": ..., ...}) says the run is `status`."""
    try:
        return bool(json.loads(data).get("status") == status)
    except (ValueError, AttributeError):
        return False


class ViewerCrowd:
    """N viewers on one run in a loop of their own (see the module's docstring).

    `stream_url` makes the URL of a run's stream for a viewer (token included) where the page gives
    none; None where the server has no stream: the tabs then only follow the page.
    """

    def __init__(
        self, base_url: str, stream_url: Callable[[str], str] | None = None, open_at_once: int = 10
    ) -> None:
        self.base_url, self.stream_url, self.open_at_once = base_url, stream_url, open_at_once
        self.viewers: list[Viewer] = []
        self.following = ""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="viewer-crowd", daemon=True)
        self.thread.start()
        self.client = self._call(self._make_client())

    def _call(self, work: Coroutine[Any, Any, Result]) -> Result:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    async def _make_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0, read=None))

    def follow(self, run_id: str, count: int) -> Opened:
        """Close the open tabs and open `count` on `/train?run=<run_id>`, each with its subscriber."""
        return self._call(self._follow(run_id, count))

    async def _follow(self, run_id: str, count: int) -> Opened:
        await self._close_all()
        self.following = run_id
        gate = asyncio.Semaphore(self.open_at_once)
        self.viewers = [Viewer(PageSession(self.base_url, "train", f"run={run_id}")) for _ in range(count)]
        results = await asyncio.gather(*(self._open(viewer, run_id, gate) for viewer in self.viewers))
        opened = [seconds for seconds in results if seconds is not None]
        return Opened(
            seconds=opened,
            failed=len(results) - len(opened),
            subscribed=sum(
                1 for viewer in self.viewers if viewer.subscriber and viewer.subscriber.log.connected_at
            ),
            from_page=sum(1 for viewer in self.viewers if viewer.stream_address(run_id)),
            exceptions=[problem for viewer in self.viewers for problem in viewer.session.log.exceptions],
        )

    async def _open(self, viewer: Viewer, run_id: str, gate: asyncio.Semaphore) -> float | None:
        """Open one tab and, once its page ran, its stream (as the page's live components do); seconds
        to the page."""
        async with gate:
            started = time.perf_counter()
            await viewer.session.open()
            if not await viewer.session.wait_for_page(PAGE_TIMEOUT_SECONDS):
                return None
            seconds = time.perf_counter() - started
            page_address = viewer.stream_address(run_id)
            address = (
                self.base_url + page_address if page_address else self.stream_url and self.stream_url(run_id)
            )
            if address:
                viewer.subscriber = StreamSubscriber(self.client, address, viewer.heard)
                viewer.subscriber.start()
                await viewer.subscriber.wait_until_connected(PAGE_TIMEOUT_SECONDS)
            return seconds

    def start_window(self) -> float:
        """Forget what the viewers saw so far; the window's start (seconds since the epoch)."""
        return self._call(self._start_window())

    async def _start_window(self) -> float:
        for viewer in self.viewers:
            log = viewer.session.log
            log.page_runs.clear()
            log.fragment_runs.clear()
            log.exceptions.clear()
            viewer.news_sent = 0
            if viewer.subscriber is not None:
                viewer.subscriber.log.delays.clear()
                viewer.subscriber.log.statuses.clear()
        return time.time()

    def figures(self) -> dict[str, float]:
        """What the viewers saw since the window started: record delays (p95, median), script runs, errors."""
        return self._call(self._figures())

    async def _figures(self) -> dict[str, float]:
        delays = [
            delay for viewer in self.viewers if viewer.subscriber for delay in viewer.subscriber.log.delays
        ]
        subscribers = [viewer.subscriber for viewer in self.viewers if viewer.subscriber]
        return {
            "delay_p95": percentile(delays, 0.95),
            "delay_median": percentile(delays, 0.5),
            "records_received": float(len(delays)),
            "page_reruns": float(sum(len(viewer.session.log.page_runs) for viewer in self.viewers)),
            "news_sent": float(sum(viewer.news_sent for viewer in self.viewers)),
            "fragment_reruns": float(sum(len(viewer.session.log.fragment_runs) for viewer in self.viewers)),
            "exceptions": float(sum(len(viewer.session.log.exceptions) for viewer in self.viewers)),
            "reconnects": float(sum(max(0, len(each.log.connected_at) - 1) for each in subscribers)),
            "stream_errors": float(
                sum(len(each.log.errors) + len(each.log.refusals) for each in subscribers)
            ),
        }

    def news_sent(self) -> int:
        """Page reruns the viewers' watch components have asked for since the window started."""
        return sum(viewer.news_sent for viewer in self.viewers)

    def status_arrivals(self, since: float, status: str) -> list[float]:
        """Per subscriber, seconds from `since` (epoch seconds) to the first `status` event saying the run
        is `status` that arrived after it (inf where none did)."""
        return self._call(self._status_arrivals(since, status))

    async def _status_arrivals(self, since: float, status: str) -> list[float]:
        arrivals = []
        for viewer in self.viewers:
            if viewer.subscriber is None:
                continue
            seen = [
                event.arrived_at - since
                for event in viewer.subscriber.log.statuses
                if event.arrived_at >= since and says_status(event.data, status)
            ]
            arrivals.append(min(seen) if seen else float("inf"))
        return arrivals

    def close(self) -> None:
        """Close every tab and stream, then the loop."""
        self._call(self._close_all())
        self._call(self.client.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _close_all(self) -> None:
        await asyncio.gather(*(self._close(viewer) for viewer in self.viewers))
        self.viewers, self.following = [], ""

    async def _close(self, viewer: Viewer) -> None:
        if viewer.subscriber is not None:
            await viewer.subscriber.close()
        await viewer.session.close()

"""A browser tab without a browser: one Streamlit session spoken at the protocol level.

`PageSession` opens `/_stcore/stream` as Streamlit's front end does and asks for a page with its
query string (`rerun_script` carrying `page_name="train"` and `query_string="run=R"`, as a tab opened
on `/train?run=R` does), then answers the server as the front end would: every `auto_rerun` (a
fragment's `run_every`) starts a timer that asks for that fragment's rerun while no script runs, a
full script run or a `stop_auto_rerun` clears those timers, and the hashes of the cacheable
messages received are sent back with each rerun (the front end's message cache), so the server
sends references instead of repeating them. Nothing is drawn: a session notes when each script run
ends (whole page or fragment), the buttons and exceptions the page showed, and the components-v2
elements with their data (`components`); `trigger` sends a component's event back as its front-end
code would (`setTriggerValue`), which reruns the page or the component's fragment.

Thousands of sessions fit in one asyncio loop (`websockets`, a Streamlit dependency); see
`benchmarks/classroom_load.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

# ForwardMsg.ScriptFinishedStatus: how a script run ended.
FINISHED = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_SUCCESSFULLY")
FRAGMENT_FINISHED = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_FRAGMENT_RUN_SUCCESSFULLY")
EARLY_FOR_RERUN = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # Streamlit's own default for a message to the browser is 200 MB.
# A components-v2 element's events reach the server as one JSON list in this widget of the element's id.
TRIGGER_WIDGET = "$$STREAMLIT_INTERNAL_KEY_{component_id}__events"


@dataclass
class Component:
    """A components-v2 element the page drew: its id, its data (decoded JSON) and its fragment, if any."""

    component_id: str
    data: Any
    fragment_id: str


@dataclass
class SessionLog:
    """What one session saw, times in seconds since the epoch (`time.time()`, comparable across processes)."""

    opened_at: float = 0.0  # when the websocket was asked for
    page_runs: list[float] = field(default_factory=list)  # a whole page's script runs that ended
    fragment_runs: list[float] = field(default_factory=list)  # a fragment's reruns that ended
    reruns_asked: int = 0  # rerun_script messages sent (the first included)
    buttons: set[str] = field(default_factory=set)  # labels of the buttons the page showed
    exceptions: list[str] = field(default_factory=list)  # st.exception / uncaught errors shown
    messages: int = 0
    received_bytes: int = 0


class PageSession:
    """One tab on one page of a Streamlit app, spoken at the protocol level (see the module's docstring)."""

    def __init__(self, base_url: str, page_name: str, query_string: str = "") -> None:
        self.stream_url = base_url.replace("http", "ws", 1).rstrip("/") + "/_stcore/stream"
        self.page_name, self.query_string = page_name, query_string
        self.log = SessionLog()
        self.components: dict[str, Component] = {}  # by id, as last drawn
        self._socket: websockets.ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._running = False  # a script run has started and not finished
        self._page_script_hash = ""
        self._cached_hashes: set[str] = set()
        self._page_ran = asyncio.Event()

    async def open(self) -> None:
        """Connect and ask for the page, as a tab loading `/<page_name>?<query_string>` does."""
        self.log.opened_at = time.time()
        # The first subprotocol is selected; the second would carry the XSRF token, the third a session to resume.
        self._socket = await websockets.connect(
            self.stream_url,
            subprotocols=[websockets.Subprotocol("streamlit")],
            max_size=MAX_MESSAGE_BYTES,
            ping_interval=None,
        )
        self._reader = asyncio.create_task(self._read())
        await self._ask_for_rerun(fragment_id="")

    async def wait_for_page(self, timeout: float) -> bool:
        """Wait until a whole page's script run has ended; False if none did within `timeout` seconds."""
        try:
            await asyncio.wait_for(self._page_ran.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Close the tab: stop its timers and its websocket."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await self._reader

    async def trigger(self, component_id: str, event: str, value: Any) -> None:
        """Send a component's event as its front-end code's `setTriggerValue(event, value)` does."""
        component = self.components[component_id]
        payload = json.dumps([{"event": event, "value": value}])
        states = WidgetStates(
            widgets=[
                WidgetState(id=TRIGGER_WIDGET.format(component_id=component_id), json_trigger_value=payload)
            ]
        )
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._ask_for_rerun(component.fragment_id, widget_states=states, automatic=False)

    async def _ask_for_rerun(
        self, fragment_id: str, widget_states: WidgetStates | None = None, automatic: bool = True
    ) -> None:
        state = ClientState(
            query_string=self.query_string,
            page_script_hash=self._page_script_hash,
            page_name="" if self._page_script_hash else self.page_name,
            fragment_id=fragment_id,
            is_auto_rerun=automatic and bool(fragment_id),
            cached_message_hashes=sorted(self._cached_hashes),
            widget_states=widget_states,
        )
        state.context_info.timezone = "UTC"
        state.context_info.locale = "en-US"
        assert self._socket is not None
        self.log.reruns_asked += 1
        await self._socket.send(BackMsg(rerun_script=state).SerializeToString())

    async def _read(self) -> None:
        assert self._socket is not None
        async for data in self._socket:
            if isinstance(data, bytes):
                self._handle(data)

    def _handle(self, data: bytes) -> None:
        message = ForwardMsg()
        message.ParseFromString(data)
        self.log.messages += 1
        self.log.received_bytes += len(data)
        if message.metadata.cacheable and message.hash:
            self._cached_hashes.add(message.hash)
        kind = message.WhichOneof("type")
        if kind == "new_session":
            self._running = True
            if not message.metadata.run.fragment_ids:  # A whole page's run: its timers start again.
                self._clear_timers(list(self._timers))
        elif (
            kind == "navigation"
        ):  # The page that ran: later reruns name it by its hash, as the front end does.
            self._page_script_hash = message.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = message.page_info_changed.query_string
        elif kind == "auto_rerun":
            self._start_timer(message.auto_rerun.fragment_id, message.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            self._clear_timers(list(message.stop_auto_rerun.fragment_ids))
        elif kind == "script_finished":
            self._finished(message.script_finished)
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            self._note_element(message)

    def _finished(self, status: int) -> None:
        self._running = False
        if status == FINISHED:
            self.log.page_runs.append(time.time())
            self._page_ran.set()
        elif status == FRAGMENT_FINISHED:
            self.log.fragment_runs.append(time.time())

    def _note_element(self, message: ForwardMsg) -> None:
        element = message.delta.new_element
        kind = element.WhichOneof("type")
        if kind == "button":
            self.log.buttons.add(element.button.label)
        elif kind == "exception":
            self.log.exceptions.append(f"{element.exception.type}: {element.exception.message}")
        elif kind == "bidi_component":
            drawn = element.bidi_component
            text = drawn.json or drawn.mixed.json
            with contextlib.suppress(ValueError):
                data = json.loads(text) if text else None
                self.components[drawn.id] = Component(drawn.id, data, message.delta.fragment_id)

    def _start_timer(self, fragment_id: str, interval: float) -> None:
        self._clear_timers([fragment_id])
        self._timers[fragment_id] = asyncio.create_task(self._every(fragment_id, interval))

    def _clear_timers(self, fragment_ids: list[str]) -> None:
        for fragment_id in fragment_ids:
            timer = self._timers.pop(fragment_id, None)
            if timer is not None:
                timer.cancel()

    async def _every(self, fragment_id: str, interval: float) -> None:
        """A fragment's `run_every`, as the front end keeps it: a rerun every `interval` while no script runs."""
        while True:
            await asyncio.sleep(interval)
            if not self._running:
                with contextlib.suppress(websockets.ConnectionClosed):
                    await self._ask_for_rerun(fragment_id)

"""The class benchmark's protocol-level tab opens the Train page as Chromium does.

`benchmarks/streamlit_protocol.py` speaks Streamlit's websocket protocol without a browser, so that
hundreds of students fit in one process; here one such tab opens `/train?run=R` on a real
`streamlit run app.py` and must receive the page's whole script run, with the run's controls.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchmarks.streamlit_protocol import PageSession
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.made_runs import make_run, reached

pytestmark = [pytest.mark.e2e, pytest.mark.light_jobs]


def test_a_protocol_tab_receives_the_train_page_of_a_run(app_url: str, app_home: Path) -> None:
    store = Store(app_home)
    run = make_run(store, status=Status.STARTING, name="followed without a browser")
    reached(store, run.id, Status.RUNNING)

    async def open_tab() -> PageSession:
        tab = PageSession(app_url, "train", f"run={run.id}")
        await tab.open()
        try:
            assert await tab.wait_for_page(timeout=120)
        finally:
            await tab.close()
        return tab

    # In a thread of its own: Playwright's sync API keeps an event loop running in this one once a
    # browser test of this process has used it.
    with ThreadPoolExecutor(1) as thread:
        tab = thread.submit(asyncio.run, open_tab()).result()
    log = tab.log
    assert len(log.page_runs) == 1
    # The run's controls, so the page shows this live run: drawn by the stream's component (sent to the
    # run's control route), or Streamlit's own buttons where the page polls.
    route = f"/cnnlab/stream/runs/{run.id}/control"
    streamed = [
        part
        for part in tab.components.values()
        if isinstance(part.data, dict) and part.data.get("control") == route
    ]
    assert streamed or {"Stop", "Pause"} <= log.buttons, (log.buttons, list(tab.components))
    assert log.exceptions == []

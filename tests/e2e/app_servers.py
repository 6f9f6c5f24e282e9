"""The one way browser tests start the app: `streamlit run app.py` on the test process's app port (or
a free one) with a private home.

- `start_app(env, secrets)` starts a server with `env` added to this process's environment (it must
  name CNNLAB_HOME) and, optionally, a secrets.toml; `stop_app(process, home)` ends it and the
  workers it left; `running_app(...)` does both around a block (the `app_url` fixture and the
  classroom modules' fixtures use it);
- `LIGHT_JOBS` and `UNTIL_STOPPED_JOBS` are server settings for modules whose pages need no Keras
  training from the server's workers: their runs record batches without TensorFlow, and so does the
  server's warm worker (which otherwise imports TensorFlow as the server starts).

The app is addressed as http://localhost:PORT: the OpenID redirect URI and the cookies of the
classroom servers are set for that host.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
# Debian's headless shell (`apt-get install -y chromium-headless-shell`), the browser Playwright itself
# runs headless, where installed: the same engine as `chromium` without the desktop browser's
# processes (about a tenth less CPU per page in these tests). Else the full Chromium.
HEADLESS_SHELL = "/usr/bin/chromium-headless-shell"
CHROMIUM = os.environ.get(
    "CNNLAB_CHROMIUM", HEADLESS_SHELL if Path(HEADLESS_SHELL).exists() else "/usr/bin/chromium"
)
SERVER_FLAGS = [
    "--server.headless=true",
    "--browser.gatherUsageStats=false",
    "--server.fileWatcherType=none",
]
# Runs record ten batches an epoch, 20 ms each, for their epochs, and obey stop and pause.
LIGHT_JOBS = {"CNNLAB_WORKER_ENTRY": "tests.fake_jobs:counting_job"}
# Runs record batches until they are stopped: a live run stays live for as long as a test looks at it.
UNTIL_STOPPED_JOBS = {"CNNLAB_WORKER_ENTRY": "tests.fake_jobs:until_stopped_job"}
START_SECONDS = 60


def require_browser() -> None:
    """Skip the test where Chromium is missing, except when CNNLAB_REQUIRE_BROWSER is set (CI): fail there."""
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    message = (
        f"Chromium not found at {CHROMIUM}; install it with `apt-get install -y chromium-headless-shell`."
    )
    if os.environ.get("CNNLAB_REQUIRE_BROWSER"):
        pytest.fail(message)
    pytest.skip(message)


def start_app(
    env: Mapping[str, str], secrets: str | None = None, slot: int = 0
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start `streamlit run app.py` on this test process's app port of `slot` (`app_port`), or on a
    free port while that one is taken; return its URL (http://localhost:PORT) and process.

    `env` is added to this process's environment and must name CNNLAB_HOME (the log is appended to
    `$CNNLAB_HOME/streamlit.log`). `secrets` is the text of a secrets.toml, given to the server
    through `--secrets.files`; "{port}" in it (the redirect URI) is the server's port.
    """
    require_browser()
    home = Path(env["CNNLAB_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    flags = list(SERVER_FLAGS)
    if secrets is not None:
        secrets_path = home / "secrets.toml"
        secrets_path.write_text(secrets)
        flags += ["--secrets.files", str(secrets_path)]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    log_path = home / "streamlit.log"
    preferred = app_port(slot)
    port = preferred if nothing_listens_on(preferred) else free_port()
    while True:
        with log_path.open("a") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", *flags, "--server.port", str(port)],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://localhost:{port}"
        if _healthy(url, process):
            return url, process
        stop_app(process, home)
        if port == preferred and f"Port {port} is not available" in log_path.read_text():
            port = free_port()  # Taken by another program since it was found free.
            continue
        pytest.fail(f"streamlit did not start: {log_path.read_text()[-2000:]}")


@functools.cache
def app_port(slot: int = 0) -> int:
    """The port this test process's app servers of `slot` take when it is free: the same for every
    module's server, so a page of a later module has the address a page of an earlier one had, and
    Chromium, whose tabs are kept between modules (tests/e2e/conftest.py), reuses the Streamlit scripts
    it compiled for it (about 1-1.5 CPU-seconds less for a module's first page). Slot 1 is the
    session's server on a trained run (`trained_app`), which runs beside the modules' servers; no two
    slots get the same port."""
    taken = {app_port(earlier) for earlier in range(slot)}
    port = free_port()
    while port in taken:
        port = free_port()
    return port


def nothing_listens_on(port: int) -> bool:
    """True when no socket listens on `port` (connections of a stopped server waiting to close do not
    count: Streamlit binds with SO_REUSEADDR, as this probe does)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return False
        return True


def _healthy(url: str, process: subprocess.Popen[bytes]) -> bool:
    """Wait until the server at `url` answers its health check (True), or its process has ended or
    START_SECONDS have passed (False)."""
    deadline = time.monotonic() + START_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def stop_app(process: subprocess.Popen[bytes], home: Path) -> None:
    """End a server started by `start_app` and the training workers it left running in `home`."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    end_workers(home)


@contextlib.contextmanager
def running_app(env: Mapping[str, str], secrets: str | None = None, slot: int = 0) -> Iterator[str]:
    """`start_app` around a block (use it inside a module- or session-scoped fixture); yields the URL."""
    url, process = start_app(env, secrets, slot)
    try:
        yield url
    finally:
        stop_app(process, Path(env["CNNLAB_HOME"]))


def end_workers(home: Path) -> None:
    """Kill the training workers a server left running in `home`, so they do not slow the next tests."""
    from cnnlab.store import statuses
    from cnnlab.store.run_store import Store

    for run in Store(home).list_runs(status=statuses.LIVE):
        if run.worker_pid:
            with contextlib.suppress(OSError):
                os.kill(run.worker_pid, signal.SIGKILL)

"""Start-up: the server warms a worker before anyone visits, and Home loads none of the heavy libraries.

The start-up benchmark (`benchmarks/cold_start.py`) measures the seconds; these tests hold the two
behaviours the seconds come from, without a clock: `streamlit run app.py` starts the scheduler's
warm worker from the App's lifespan, before any page is opened, and Home in single-user mode
imports neither pandas (a second here) nor Keras or TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import psutil
from waiting import wait_until

from cnnlab.runs.queue.executor import process_alive
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "pyarrow", "keras", "tensorflow", "sklearn")


def _children(parent: int) -> list[tuple[int, str]]:
    """The processes whose parent is `parent`: (process id, command line)."""
    found = []
    for child in psutil.Process(parent).children():
        with contextlib.suppress(psutil.Error):
            found.append((child.pid, " ".join(child.cmdline())))
    return found


def test_the_server_starts_a_warm_worker_before_anyone_visits_and_ends_it_as_it_stops(tmp_path: Path) -> None:
    port = free_port()
    environment = {**os.environ, "CNNLAB_HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true"]
    command += ["--browser.gatherUsageStats=false", "--server.fileWatcherType=none", f"--server.port={port}"]
    with (tmp_path / "streamlit.log").open("w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    workers: list[tuple[int, str]] = []
    try:

        def healthy() -> bool:
            assert server.poll() is None, (tmp_path / "streamlit.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    return True
            except OSError:
                return False

        wait_until(healthy, "the server's health check")

        def warm_workers() -> list[tuple[int, str]]:
            return [child for child in _children(server.pid) if "cnnlab.runs.worker.main" in child[1]]

        # No page was opened: only the App's lifespan can have started this worker.
        wait_until(warm_workers, "a warm worker started by the server")
        workers = warm_workers()
        assert all("--warm" in command_line for _, command_line in workers), workers
        assert f"--home {tmp_path}" in workers[0][1]
        # Stopping the server ends its warm worker before the server exits, even one still importing
        # TensorFlow (which would otherwise take a core for seconds after its server had gone).
        server.terminate()
        server.wait(timeout=30)
        assert not [worker_id for worker_id, _ in workers if process_alive(worker_id)]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        for worker_id, _ in workers:
            with contextlib.suppress(OSError):
                os.kill(worker_id, signal.SIGKILL)


def test_home_imports_no_pandas_nor_keras(tmp_path: Path) -> None:
    # A fresh interpreter: this test process has imported everything already.
    script = textwrap.dedent(
        f"""
        import sys
        from streamlit.testing.v1 import AppTest
        app = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=60).run()
        assert not app.exception, app.exception
        assert app.button(key="quick_train").label == "Train a digits classifier"
        print("imported:" + ",".join(name for name in {HEAVY!r} if name in sys.modules))
        """
    )
    environment = {**os.environ, "CNNLAB_HOME": str(tmp_path)}
    environment.pop("CNNLAB_CLASSROOM", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "imported:", result.stdout

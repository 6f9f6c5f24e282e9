"""Store writes on one background thread, in order, so compressing and saving overlap training.

The recording callbacks (`cnnlab.runs.worker.callbacks`) hand the slow writes of an epoch (telemetry
snapshots, then the epoch's metrics row) to one `BackgroundWriter`. One thread runs them in the
order they were submitted, so a reader that sees an epoch's metrics also finds its snapshots.
A write that fails is not lost: the error is raised by the next `submit` or by `flush`, and the
worker turns it into a failed run. Checkpoints are written on the training thread instead,
because they must hold the weights of the epoch that just ended.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any


class BackgroundWriter:
    """Run store writes in order on one thread; `flush()` waits for them and raises the first error.

    Example:

    >>> writer = BackgroundWriter()
    >>> writer.submit(store.add_epoch_metrics, run_id, {"epoch": 1, "loss": 0.5})
    >>> writer.flush()  # The row is in the store now.
    """

    def __init__(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="cnnlab-writer"
        )
        self._pending: list[concurrent.futures.Future[Any]] = []

    def submit(self, function: Callable[..., Any], *arguments: Any) -> None:
        """Queue `function(*arguments)`; raise now if an earlier write failed."""
        for future in [future for future in self._pending if future.done()]:
            self._pending.remove(future)
            future.result()
        self._pending.append(self._executor.submit(function, *arguments))

    def flush(self) -> None:
        """Wait for every queued write; raise the first error one of them met."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Flush, then end the writer's thread (a closed writer takes no more writes)."""
        try:
            self.flush()
        finally:
            self._executor.shutdown(wait=True)

"""How the server applies the records a Ray worker sends: each becomes the same `Store` call a local worker makes
(or, for a file Keras wrote in the run's folder, the same file).

A record is `(run id, kind, arguments)` as `cnnlab.runs.ray.channel.RecordingStore` sends it. The
server's store stays the one writer: only the executor's pump thread calls `apply_record`. A record
for a run that has gone (deleted) or whose status moved on meanwhile (the user killed it) is
skipped with a warning, as a local worker's write would have failed then. This module imports
neither Ray nor TensorFlow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnLabError, RunError
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

logger = logging.getLogger(__name__)

# The process id a Ray worker's heartbeat records: none of this machine's processes, so nothing on
# the server judges the run by a local process (the executor watches the Ray actor instead).
REMOTE_PID = 0
DIED_HINT = (
    "The metrics, snapshots and checkpoints it sent before it died are kept: fork it from its last saved "
    "epoch to carry on. If Ray workers die often, check the node's memory and logs (`ray status`, `ray logs`)."
)


def _write_bytes(content: bytes) -> Callable[[Path], object]:
    return lambda path: path.write_bytes(content)


def _run_file(store: Store, run_id: str, relative: str, content: bytes) -> None:
    """Write a file the worker made in its run's folder (its TensorBoard logs) at the same place here.

    Files Keras writes itself do not pass through the store, so this is the one record that is not a
    store call; RunError for a run that has gone or a path outside the run's folder.
    """
    store.get_run(run_id)  # A deleted run gets no folder back.
    folder = store.run_folder(run_id).resolve()
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder) or path == folder:
        raise RunError(f"A Ray worker sent a file outside run {run_id}'s folder: {relative!r}; not written.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _status(
    store: Store, run_id: str, value: str, reason: str | None, hint: str | None, trace: str | None
) -> None:
    store.set_status(run_id, Status(value), reason=reason, hint=hint, traceback=trace)


def _delete_epoch_weights(store: Store, run_id: str, epoch: int) -> None:
    # The node's store knows no forks of the run; the server's does, and keeps what they start from.
    if epoch not in store.forked_epochs(run_id):
        store.delete_epoch_weights(run_id, epoch)


_APPLY: dict[str, Callable[..., object]] = {
    "heartbeat": lambda store, run_id: store.heartbeat(run_id, REMOTE_PID),
    "status": _status,
    "batch_metrics": lambda store, run_id, rows: store.add_batch_metrics(run_id, rows),
    "epoch_metrics": lambda store, run_id, row: store.add_epoch_metrics(run_id, row),
    "snapshot": lambda store, run_id, epoch, kind, arrays: store.write_snapshot(run_id, epoch, kind, arrays),
    "checkpoint": lambda store, run_id, which, epoch, content: store.save_checkpoint(
        run_id, which, epoch, _write_bytes(content)
    ),
    "delete_epoch_weights": _delete_epoch_weights,
    "event": lambda store, run_id, message, level: store.log_event(run_id, message, level),
    "diagnosis": lambda store, run_id, finding: store.add_diagnosis(run_id, finding),
    "results": lambda store, run_id, results: store.set_results(run_id, results),
    "dataset_summary": lambda store, run_id, summary: store.set_dataset_summary(run_id, summary),
    "clear_control": lambda store, run_id, action: store.clear_control(run_id, action),
    "run_file": _run_file,
}
KINDS = frozenset(_APPLY)


def apply_record(store: Store, record: tuple[str, str, tuple[Any, ...]]) -> bool:
    """Make the store call a record stands for; False (and a warning) if the store refused it."""
    run_id, kind, arguments = record
    apply = _APPLY.get(kind)
    if apply is None:
        logger.warning("A Ray worker sent a record of unknown kind %r for run %s; skipped.", kind, run_id)
        return False
    try:
        apply(store, run_id, *arguments)
    except CnnLabError as error:
        logger.warning("A %s record of run %s was not applied: %s", kind, run_id, error)
        return False
    return True


def died_reason(where: str, ray_error: str) -> str:
    """The failure reason of a run whose Ray worker died: where it ran and, in a few words, Ray's cause."""
    text = ray_error.lower()
    if "sigkill" in text or "killed" in text:
        cause = "its process was killed"
    elif "node" in text and ("died" in text or "dead" in text):
        cause = "its node left the cluster"
    else:
        cause = "its process exited unexpectedly"
    return f"The Ray worker running it died ({where}{cause})."


def node_stopped_reason(where: str, ray_error: str) -> str:
    """The failure reason of a run whose whole Ray node stopped (its raylet died, the machine went away)."""
    return f"The Ray node running it stopped: {where}{ray_error.rstrip('.')}."

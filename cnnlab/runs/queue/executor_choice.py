"""Which executor the scheduler starts runs through: local processes, or a Ray cluster.

`CNNLAB_EXECUTOR` unset (or `local`): `cnnlab.runs.queue.executor.LocalProcessExecutor`, worker processes
on this machine. `CNNLAB_EXECUTOR=ray`: `cnnlab.runs.ray.executor.RayExecutor` on the cluster at
Ray's own `RAY_ADDRESS` (unset: a local Ray cluster started inside this process). Ray is an extra
(`pip install -e '.[ray]'`) and is imported only when chosen.

`CNNLAB_WORKER_ENTRY` (local processes only) names the job function the workers run, as
`module:function`; unset, they train (`cnnlab.runs.queue.job.DEFAULT_ENTRY`). The browser tests point
a server at a light job this way when its pages only need a run that records batches.
"""

from __future__ import annotations

import os

from cnnlab.errors import RunError
from cnnlab.runs.queue.executor import Executor, LocalProcessExecutor
from cnnlab.runs.queue.job import DEFAULT_ENTRY
from cnnlab.store.run_store import Store

EXECUTOR_VARIABLE = "CNNLAB_EXECUTOR"
ENTRY_VARIABLE = "CNNLAB_WORKER_ENTRY"
CHOICES = ("local", "ray")


def chosen_kind() -> str:
    """`local` or `ray`, from `$CNNLAB_EXECUTOR` (RunError for anything else)."""
    kind = os.environ.get(EXECUTOR_VARIABLE, "").strip().lower() or "local"
    if kind not in CHOICES:
        raise RunError(
            f"{EXECUTOR_VARIABLE} must be 'local' or 'ray'; got {os.environ[EXECUTOR_VARIABLE]!r}. "
            "Unset it to train in processes on this machine."
        )
    return kind


def chosen_entry() -> str:
    """The job the local workers run, `module:function`, from `$CNNLAB_WORKER_ENTRY` (default: training)."""
    entry = os.environ.get(ENTRY_VARIABLE, "").strip() or DEFAULT_ENTRY
    module_name, _, function_name = entry.partition(":")
    if not module_name or not function_name:
        raise RunError(
            f"{ENTRY_VARIABLE} must name a job function as module:function; got {entry!r}. "
            "Unset it to train models."
        )
    return entry


def choose_executor(
    store: Store, *, threads: int | None = None, warm: bool = True, reuse: bool = False
) -> Executor:
    """The executor `$CNNLAB_EXECUTOR` asks for, recording into `store`; workers get `threads` threads.

    `warm` keeps a worker with TensorFlow imported waiting for the next run; `reuse` (local
    processes only) lets a worker that ended a run take the next one. Local workers run the job
    `$CNNLAB_WORKER_ENTRY` names (`chosen_entry`).
    """
    if chosen_kind() == "local":
        return LocalProcessExecutor(store.home, entry=chosen_entry(), threads=threads, warm=warm, reuse=reuse)
    try:
        from cnnlab.runs.ray.executor import RayExecutor
    except ImportError as error:
        raise RunError(
            f"{EXECUTOR_VARIABLE}=ray needs Ray, which is not installed here ({error}). "
            "Install it with `pip install -e '.[ray]'`, or unset the variable to train on this machine."
        ) from error
    # Not the server's `threads`: a run on Ray asks for `CNNLAB_RAY_CPUS_PER_RUN` CPUs (default 1), and
    # its TensorFlow threads follow that, so a 1-CPU node can take it.
    return RayExecutor(store, warm=warm)

"""How workers share the machine: TensorFlow's thread counts per worker and the workers' CPU priority.

Thread counts are set in the worker's environment before TensorFlow starts (`configure_threads`)
and applied again through `tf.config` once it has (`apply_tensorflow_threads`). The scheduler and
the worker use the same rule: the cores shared out among the workers allowed at once. A worker also
lowers its own CPU priority (`lower_priority`), so the server that shares its cores stays responsive.
"""

from __future__ import annotations

import os
import sys

from cnnlab.errors import RunError
from cnnlab.runs.queue import capacity

# A worker on the server's machine runs at this niceness (0: the server's priority; 19: the lowest).
# When a page, a Stop click or the browser on the same machine wants a core a worker is using, they
# go first (a worker importing TensorFlow as the server starts made the first page take seconds
# longer); a worker alone on the machine still trains at full speed, since niceness only decides who
# waits. A process cannot raise its priority again without privileges, hence a whole-life setting.
WORKER_NICENESS = 10


def worker_niceness() -> int:
    """`$CNNLAB_WORKER_NICENESS` (0-19; 0 keeps the server's priority), else `WORKER_NICENESS`."""
    value = os.environ.get("CNNLAB_WORKER_NICENESS", "").strip()
    if not value:
        return WORKER_NICENESS
    if not value.isdigit() or int(value) > 19:
        raise RunError(f"CNNLAB_WORKER_NICENESS must be a whole number from 0 to 19; got {value!r}.")
    return int(value)


def lower_priority() -> int:
    """Lower this process's CPU priority by `worker_niceness()`; returns the process's niceness after."""
    return os.nice(worker_niceness())


def configure_threads(threads: int | None = None) -> int:
    """Set TensorFlow's thread counts and log level in the environment; call before TensorFlow starts.

    `threads` defaults to `$CNNLAB_WORKER_THREADS`, else the cores shared among `$CNNLAB_MAX_WORKERS`.
    Returns the intra-op thread count.
    """
    if threads is None:
        text = os.environ.get("CNNLAB_WORKER_THREADS", "").strip()
        threads = int(text) if text.isdigit() and int(text) > 0 else None
    if threads is None:
        threads = capacity.default_threads()
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(min(2, threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return threads


def apply_tensorflow_threads() -> None:
    """Apply the thread counts set by `configure_threads` through `tf.config` once TensorFlow is imported."""
    if "tensorflow" not in sys.modules:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TF_NUM_INTRAOP_THREADS"]))
        tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["TF_NUM_INTEROP_THREADS"]))
    except (RuntimeError, KeyError):
        # TensorFlow was already initialised; the environment variables took effect instead.
        pass

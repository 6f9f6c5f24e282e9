"""TensorFlow's thread counts per worker, so several workers share the cores instead of fighting.

Set in the worker's environment before TensorFlow starts (`configure_threads`) and applied again
through `tf.config` once it has (`apply_tensorflow_threads`). The scheduler and the worker use
the same rule: the cores shared out among the workers allowed at once.
"""

from __future__ import annotations

import os
import sys

from cnnlab.errors import RunError


def default_max_workers() -> int:
    """`$CNNLAB_MAX_WORKERS`, else half the cores (at least one)."""
    value = os.environ.get("CNNLAB_MAX_WORKERS", "").strip()
    if not value:
        return max(1, (os.cpu_count() or 1) // 2)
    if not value.isdigit() or int(value) < 1:
        raise RunError(f"CNNLAB_MAX_WORKERS must be a whole number of at least 1; got {value!r}.")
    return int(value)


def default_threads(max_workers: int | None = None) -> int:
    """TensorFlow threads per worker: the cores shared out among the workers allowed at once."""
    return max(1, (os.cpu_count() or 1) // (max_workers or default_max_workers()))


def configure_threads(threads: int | None = None) -> int:
    """Set TensorFlow's thread counts and log level in the environment; call before TensorFlow starts.

    `threads` defaults to `$CNNLAB_WORKER_THREADS`, else the cores shared among `$CNNLAB_MAX_WORKERS`.
    Returns the intra-op thread count.
    """
    if threads is None:
        text = os.environ.get("CNNLAB_WORKER_THREADS", "").strip()
        threads = int(text) if text.isdigit() and int(text) > 0 else None
    if threads is None:
        threads = default_threads()
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

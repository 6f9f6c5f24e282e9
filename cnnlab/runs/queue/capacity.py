"""What the server knows about the machine before any worker starts: how many workers run at once,
how many TensorFlow threads each gets, and how many GPUs a run asks a cluster for.

The scheduler and the worker use the same rules (`cnnlab.runs.worker.threads` and `devices` read
them). Nothing here imports TensorFlow: the installed build is read from the package metadata.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

from cnnlab.errors import RunError

GPUS_PER_RUN_VARIABLE = "CNNLAB_GPUS_PER_RUN"
# One entry per GPU the NVIDIA driver sees. Read here, not through psutil (which knows no GPUs) nor
# TensorFlow (which the server never imports).
NVIDIA_GPUS_FOLDER = Path("/proc/driver/nvidia/gpus")


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


def tensorflow_build() -> str:
    """ "cuda" when the installed TensorFlow can use NVIDIA GPUs (the `tensorflow` package on Linux
    without `tensorflow-cpu`), "cpu" for the CPU build, "absent" without TensorFlow."""

    def installed(name: str) -> bool:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            return False
        return True

    if installed("tensorflow-cpu"):
        return "cpu"
    if installed("tensorflow"):
        return "cuda" if sys.platform.startswith("linux") else "cpu"
    return "absent"


def gpus_per_run(build: str | None = None, gpu_count: int | None = None) -> float:
    """The GPUs one run asks a cluster for (Ray's `num_gpus`).

    `$CNNLAB_GPUS_PER_RUN` when set (a fraction such as 0.5 lets runs share a GPU; the cluster's
    nodes may have GPUs this server lacks). Unset: 1 when this machine has the CUDA build of
    TensorFlow and an NVIDIA GPU, else 0. `build` and `gpu_count` default to what this machine has.
    """
    text = os.environ.get(GPUS_PER_RUN_VARIABLE, "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not (value >= 0 and (value <= 1 or value.is_integer())):
            raise RunError(
                f"{GPUS_PER_RUN_VARIABLE} must be 0, a fraction up to 1 or a whole number of GPUs; "
                f"got {text!r}. Unset it to use one GPU per run where this machine has one."
            )
        return value
    build = tensorflow_build() if build is None else build
    if gpu_count is None:
        gpu_count = len(list(NVIDIA_GPUS_FOLDER.iterdir())) if NVIDIA_GPUS_FOLDER.is_dir() else 0
    return 1.0 if build == "cuda" and gpu_count > 0 else 0.0

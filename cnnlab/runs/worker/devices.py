"""Which device a training worker uses: a GPU of its own, a share of one, or the CPU.

The choice is a pure function (`choose_device`) of what TensorFlow reports (the physical GPUs), the
worker's slot among the workers allowed at once, and two settings read from the environment:

- `CNNLAB_DEVICE`: `auto` (default: a GPU when TensorFlow sees one, else the CPU), `cpu` (never a
  GPU: the worker hides them with `CUDA_VISIBLE_DEVICES=-1` before TensorFlow starts) or `gpu` (a
  GPU or an error saying how to get one).
- `CNNLAB_GPU_MEMORY_MB`: unset, each worker takes the GPU of its slot (slot `i` gets GPU
  `i mod count`) with memory growth on, so it holds only what it uses; set, the worker's GPU gets
  a hard memory limit of that many megabytes instead, so several runs can share one GPU safely.

A local worker finds its slot by locking the first free `workers/slot-N.lock` in the CNN Lab
folder (the lock ends with the process); `CNNLAB_WORKER_SLOT` gives it instead. A Ray task needs
no slot: Ray sets `CUDA_VISIBLE_DEVICES` to the GPU it granted, so TensorFlow sees only that one.
`gpus_per_run` is what an executor asks a cluster for. Nothing here imports TensorFlow at module
level: the server reads `gpus_per_run` without starting it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cnnlab.errors import RunError
from cnnlab.runs.queue import capacity

DEVICE_VARIABLE = "CNNLAB_DEVICE"
MEMORY_VARIABLE = "CNNLAB_GPU_MEMORY_MB"
SLOT_VARIABLE = "CNNLAB_WORKER_SLOT"
PREFERENCES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Gpu:
    """A physical GPU as TensorFlow lists it: its position in that list and its name."""

    index: int
    name: str = "GPU"


@dataclass(frozen=True)
class DeviceChoice:
    """Where a run trains: on `gpu` (None: the CPU) with memory growth or a memory limit."""

    gpu: Gpu | None
    threads: int
    memory_limit_mb: int | None = None

    @property
    def label(self) -> str:
        """For people: "CPU (2 threads)", "GPU 0: NVIDIA T4 (memory growth)", "GPU 1: ... (4096 MB limit)"."""
        if self.gpu is None:
            return f"CPU ({self.threads} thread{'s' if self.threads != 1 else ''})"
        memory = "memory growth" if self.memory_limit_mb is None else f"{self.memory_limit_mb} MB limit"
        return f"GPU {self.gpu.index}: {self.gpu.name} ({memory})"


def choose_device(
    gpus: Sequence[Gpu],
    slot: int,
    *,
    threads: int,
    preference: str = "auto",
    memory_limit_mb: int | None = None,
) -> DeviceChoice:
    """The device of the worker in `slot` (0, 1, ...) given the GPUs TensorFlow lists.

    No GPU, or `preference` "cpu": the CPU. Otherwise GPU `slot mod len(gpus)`: one GPU per worker
    while there are enough, then workers share them round-robin. Memory growth unless a
    `memory_limit_mb` is given. `preference` "gpu" without a GPU raises a `RunError` saying how to
    get one.
    """
    if preference not in PREFERENCES:
        raise RunError(f"{DEVICE_VARIABLE} must be one of {', '.join(PREFERENCES)}; got {preference!r}.")
    if slot < 0:
        raise RunError(f"A worker's slot is a whole number from 0; got {slot}.")
    if preference == "gpu" and not gpus:
        raise RunError(
            f"{DEVICE_VARIABLE}=gpu but TensorFlow sees no GPU. Install TensorFlow with CUDA "
            "(pip install -e '.[gpu]', after removing tensorflow-cpu) on a machine with an NVIDIA driver, "
            f"or set {DEVICE_VARIABLE}=auto to train on the CPU."
        )
    if preference == "cpu" or not gpus:
        return DeviceChoice(gpu=None, threads=threads)
    return DeviceChoice(gpu=gpus[slot % len(gpus)], threads=threads, memory_limit_mb=memory_limit_mb)


def preference_from_environment() -> str:
    """`$CNNLAB_DEVICE` in lower case, `auto` when unset (checked by `choose_device`)."""
    return os.environ.get(DEVICE_VARIABLE, "").strip().lower() or "auto"


def memory_limit_from_environment() -> int | None:
    """`$CNNLAB_GPU_MEMORY_MB` as a whole number of megabytes, or None (memory growth) when unset."""
    text = os.environ.get(MEMORY_VARIABLE, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise RunError(
            f"{MEMORY_VARIABLE} must be a whole number of megabytes of at least 1; got {text!r}. "
            "Unset it to let each run's GPU memory grow as it needs."
        )
    return int(text)


def configure_environment() -> None:
    """Before TensorFlow starts: hide the GPUs when the CPU is asked for, and set memory growth as
    TensorFlow's own default when no memory limit is set (TensorFlow reads both at start)."""
    if preference_from_environment() == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    if memory_limit_from_environment() is None:
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


_held_slot: IO[str] | None = None  # The open lock file of this process's slot; released when it ends.


def claim_slot(folder: Path, slots: int) -> int:
    """This process's slot: `$CNNLAB_WORKER_SLOT`, else the first of `slots` lock files in `folder`
    no other live process holds (0 when all are held or locks are not available)."""
    global _held_slot
    text = os.environ.get(SLOT_VARIABLE, "").strip()
    if text.isdigit():
        return int(text)
    try:
        import fcntl
    except ImportError:  # Windows has no fcntl; every worker takes slot 0 there.
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    for slot in range(max(1, slots)):
        handle = open(folder / f"slot-{slot}.lock", "a")  # noqa: SIM115 - held open for the process's life.
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        if _held_slot is not None:
            _held_slot.close()
        _held_slot = handle
        return slot
    return 0


_chosen: DeviceChoice | None = None  # What `apply_tensorflow_device` set up in this process.


def _threads() -> int:
    """The intra-op threads TensorFlow was told to use (see `cnnlab.runs.worker.threads`)."""
    text = os.environ.get("TF_NUM_INTRAOP_THREADS", "")
    return int(text) if text.isdigit() and int(text) > 0 else (os.cpu_count() or 1)


def _gpu_name(tensorflow: Any, device: Any) -> str:
    """The model name TensorFlow reports for a physical GPU ("NVIDIA T4"), or "GPU"."""
    with contextlib.suppress(Exception):  # Any failure of a driver query only costs the name.
        return str(tensorflow.config.experimental.get_device_details(device).get("device_name") or "GPU")
    return "GPU"


def apply_tensorflow_device(slot_folder: Path | None = None) -> DeviceChoice:
    """Choose this worker's device from the GPUs TensorFlow lists and set TensorFlow up for it.

    Call after importing TensorFlow and before it runs anything; `slot_folder` holds the slot locks
    (needed only when there are several GPUs). Returns the choice, which `describe_device` reports.
    """
    global _chosen
    import tensorflow as tf

    found = tf.config.list_physical_devices("GPU")
    gpus = [Gpu(index, _gpu_name(tf, device)) for index, device in enumerate(found)]
    slot = 0
    if len(gpus) > 1 and slot_folder is not None:
        slot = claim_slot(slot_folder, capacity.default_max_workers())
    choice = choose_device(
        gpus,
        slot,
        threads=_threads(),
        preference=preference_from_environment(),
        memory_limit_mb=memory_limit_from_environment(),
    )
    try:
        if choice.gpu is None:
            if found:
                tf.config.set_visible_devices([], "GPU")
        else:
            device = found[choice.gpu.index]
            tf.config.set_visible_devices([device], "GPU")
            if choice.memory_limit_mb is None:
                tf.config.experimental.set_memory_growth(device, True)
            else:
                limit = tf.config.LogicalDeviceConfiguration(memory_limit=choice.memory_limit_mb)
                tf.config.set_logical_device_configuration(device, [limit])
    except RuntimeError as error:
        # TensorFlow had already started its devices (something ran before): say what it uses.
        print(f"cnnlab worker: could not set up {choice.label}: {error}", file=sys.stderr, flush=True)
        choice = _current_device(tf)
    _chosen = choice
    return choice


def _current_device(tensorflow: Any) -> DeviceChoice:
    """What TensorFlow uses now, without changing it: its first visible GPU, else the CPU."""
    visible = tensorflow.config.get_visible_devices("GPU")
    if not visible:
        return DeviceChoice(gpu=None, threads=_threads())
    physical = tensorflow.config.list_physical_devices("GPU")
    device = visible[0]
    gpu = Gpu(physical.index(device) if device in physical else 0, _gpu_name(tensorflow, device))
    growth = bool(tensorflow.config.experimental.get_memory_growth(device))
    limits = tensorflow.config.get_logical_device_configuration(device) or []
    limit = getattr(limits[0], "memory_limit", None) if limits and not growth else None
    return DeviceChoice(gpu=gpu, threads=_threads(), memory_limit_mb=limit)


def chosen_device() -> DeviceChoice | None:
    """The device `apply_tensorflow_device` set up in this process, or None if it has not run."""
    return _chosen


def describe_device() -> str:
    """The device this process trains on, e.g. "CPU (2 threads)" or "GPU 0: NVIDIA T4 (memory growth)"."""
    if _chosen is not None:
        return _chosen.label
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        return _current_device(tf).label
    return DeviceChoice(gpu=None, threads=_threads()).label

"""The cluster side of the Ray executor: `RunActor`, a warm worker that trains runs and holds their channels.

A `RunActor` is a detached Ray actor that imports TensorFlow when it is created (a warm worker),
then trains runs one after another with `cnnlab.runs.worker.main.run_job`, each into a node-local
`RecordingStore` whose records wait in the run's own `RunChannel` (`cnnlab.runs.ray.channel`) until
the server takes them with `take`. The run's TensorBoard logs (files Keras wrote during the fit)
follow when the run ends. No other actor carries its records: a node that dies ends only its own
runs, and the server keeps everything they had sent.

The server side, which applies the records to the one real store, is `cnnlab.runs.ray.executor`.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import ray

from cnnlab.runs.queue.job import Job
from cnnlab.runs.ray import bundle as ray_bundle
from cnnlab.runs.ray import channel as ray_channel
from cnnlab.runs.worker import main as worker
from cnnlab.runs.worker import threads


class RunActor:
    """A worker on a cluster node: imports the job (TensorFlow) once, then trains runs one at a time.

    Created at once (placed on a node: `placed` answers); the import is its first task, `warm_up`,
    so the executor tells a run waiting for a node from a run waiting for TensorFlow.
    """

    def __init__(self, entry: str, thread_count: int | None) -> None:
        threads.configure_threads(thread_count)
        self.entry = entry
        self._job: Job | None = None
        self._loading = threading.Lock()
        self.home: Path | None = None
        self.runs_trained = 0
        self.current_run: str | None = None
        self._channels: dict[str, ray_channel.RunChannel] = {}
        self._finished: set[str] = set()
        self._changed = threading.Condition()

    def placed(self) -> bool:
        """True: the actor has a node and has started (its job may still be importing)."""
        return True

    def warm_up(self) -> bool:
        """Import the job (TensorFlow, for the default) unless done; True once done: the actor is warm."""
        self._load()
        return True

    def _load(self) -> Job:
        with self._loading:
            if self._job is None:
                self._job = worker.load_job(self.entry, warm_up=True)
            return self._job

    def where(self) -> dict[str, object]:
        """The process id, host name, Ray node and node-local store folder of this worker."""
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "node": ray.get_runtime_context().get_node_id(),
            "home": str(self.home),
            "runs_trained": self.runs_trained,
        }

    def runs(self) -> list[str]:
        """The runs whose records are not all acknowledged yet (training, or ended and not drained)."""
        with self._changed:
            return [run_id for run_id, channel in self._channels.items() if not channel.drained]

    def _channel(self, run_id: str) -> ray_channel.RunChannel:
        with self._changed:
            if run_id not in self._channels:
                # Drained channels of earlier runs are not needed any more.
                for done in [key for key, channel in self._channels.items() if channel.drained]:
                    del self._channels[done]
                self._channels[run_id] = ray_channel.RunChannel(run_id)
            return self._channels[run_id]

    def train(
        self, run_id: str, bundle: ray_bundle.RunBundle, dataset: ray_bundle.DatasetPayload | None
    ) -> str:
        """Train the run into a node-local store that sends every record through the run's channel; return its final status.

        Returns (or raises) once the server has acknowledged every record of the run, or `FLUSH_SECONDS` passed.
        """
        channel = self._channel(run_id)
        self.home = Path(tempfile.mkdtemp(prefix=f"cnnlab-ray-{run_id}-"))
        self.current_run = run_id
        try:
            dataset_path = None if dataset is None else ray_bundle.materialise_dataset(dataset)
            ray_bundle.unpack_run(bundle, self.home, dataset_path)
            store = ray_channel.RecordingStore(self.home, run_id, channel)
            store.log_event(
                run_id,
                f"Ray worker process {os.getpid()} on {socket.gethostname()} took the run",
                level=worker.TECHNICAL,
            )
            status = worker.run_job(run_id, store, self._load())
            # Keras wrote the TensorBoard logs to files here during the fit; the server keeps them.
            # Imported here: the module imports Keras, which the server, importing this file, must not.
            from cnnlab.runs.worker import tensorboard_logs

            store.send_folder(run_id, tensorboard_logs.log_folder(store, run_id))
            store.close()
            return str(status)
        finally:
            channel.close()
            # The one wait for the server in a run besides the epochs' (`ray_channel`): it has every record,
            # the final status and results too, before the run counts as ended here and the actor is reused.
            channel.flush()
            shutil.rmtree(self.home, ignore_errors=True)
            with self._changed:
                self.current_run = None
                self.runs_trained += 1
                self._finished.add(run_id)
                self._changed.notify_all()

    def take(
        self, run_id: str, acknowledged: int | None, timeout: float
    ) -> tuple[int, list[ray_channel.Record], bool]:
        """The run's records from number `acknowledged` on (see `RunChannel.take`), waiting up to `timeout` s."""
        return self._channel(run_id).take(acknowledged, timeout)

    def set_control(self, run_id: str, action: str) -> None:
        """Pass on the server's stop, pause or resume request to the run's job."""
        self._channel(run_id).set_control(action)

    def join(self, run_id: str) -> None:
        """Return once `train` has ended run `run_id` (a restarted server waits on this, not on `train`)."""
        with self._changed:
            self._changed.wait_for(lambda: run_id in self._finished)

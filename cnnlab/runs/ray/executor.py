"""`RayExecutor`: the scheduler's runs as Ray actors on a cluster that shares no disk with the server.

Chosen with `CNNLAB_EXECUTOR=ray` (`cnnlab.runs.queue.executor_choice`) on Ray's own `RAY_ADDRESS`. Each
run becomes a detached `RunActor` (`cnnlab.runs.ray.remote`) asking for the run's CPUs and, where
`cnnlab.runs.worker.devices` says runs use one, `num_gpus`; a warm actor waits for the next run, and one
that ended a run takes the next. The run's rows and files (`ray_bundle.pack_run`) and an uploaded
dataset (put once per dataset) reach the node through Ray's object store. Every record the worker
writes comes back through the `Mailbox` actor; a pump thread here applies them, in order, to the
server's store, the one writer, and forwards stop, pause and resume the other way. A worker whose
actor dies has its run marked `failed` within about a second, after every
record it sent is applied. Actors and mailbox are detached: a restarted server `reattach`es to the
runs still training; the scheduler marks the others `interrupted` once their heartbeat is stale.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import threading
import time
import uuid
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from cnnlab.errors import RunError
from cnnlab.runs.queue import capacity
from cnnlab.runs.queue.job import DEFAULT_ENTRY
from cnnlab.runs.ray import bundle as ray_bundle
from cnnlab.runs.ray import records as ray_records
from cnnlab.runs.ray import remote as ray_remote
from cnnlab.store import statuses
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

logger = logging.getLogger(__name__)

NAMESPACE = "cnnlab"
PUMP_SECONDS = 0.1  # how often the pump applies records, forwards control and looks for ended actors
WARM_PREFIX = "warm:"  # the mailbox's key of a warm actor that has no run yet
FINISHING_WAIT_SECONDS = 5.0  # a submit waits this long at most for an actor whose run just ended
MAX_IDLE_ACTORS = 1  # warm actors kept waiting at most (each holds its CPUs on the cluster)


@dataclasses.dataclass
class RemoteRun:
    """What the executor keeps about one run on the cluster."""

    actor: Any
    ready: Any  # the ObjectRef of the actor's `ready()`: ready once it has started and imported the job
    done: Any  # the ObjectRef of `train` (or, after a reattach, of `join`)
    location: Any  # the ObjectRef of the actor's `where()`
    forwarded_control: str | None = None
    exit: str | None = None  # how it ended, once it has


@dataclasses.dataclass(frozen=True)
class IdleActor:
    """A warm actor waiting for a run, with its key in the mailbox and the ObjectRef of its `ready()`."""

    key: str
    actor: Any
    ready: Any


def _is_ready(reference: Any) -> bool:
    """True once an ObjectRef has its value (or its error)."""
    ready, _ = ray.wait([reference], timeout=0)
    return bool(ready)


def mailbox_name(store: Store) -> str:
    """The mailbox of one CNN Lab home: servers with different homes can share a cluster."""
    return "cnnlab-mailbox-" + hashlib.sha256(str(store.home.resolve()).encode()).hexdigest()[:12]


class RayExecutor:
    """Runs each worker as a Ray actor and pumps its records into `store` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        address: str | None = None,
        entry: str = DEFAULT_ENTRY,
        threads: int | None = None,
        warm: bool = True,
        reuse: bool = True,
        pump_seconds: float = PUMP_SECONDS,
    ) -> None:
        self.store = store
        self.entry = entry
        self.threads = threads
        self.warm = warm
        self.reuse = reuse
        self.pump_seconds = pump_seconds
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            try:
                ray.init(address=address, log_to_driver=False)
            except (ConnectionError, RuntimeError) as error:
                raise RunError(
                    f"CNN Lab could not connect to the Ray cluster at RAY_ADDRESS={address!r}: {error}. "
                    "Start one with `ray start --head` (and `ray start --address HEAD:PORT` on the other "
                    "machines) and set RAY_ADDRESS to the head's address, or unset CNNLAB_EXECUTOR."
                ) from error
        # Any: Ray types an actor handle's methods as the class's, without `.remote`.
        self.mailbox: Any = (
            ray.remote(ray_remote.Mailbox)
            .options(
                name=mailbox_name(store),
                namespace=NAMESPACE,
                lifetime="detached",
                get_if_exists=True,
                num_cpus=0,
            )
            .remote()
        )
        self.gpus_per_run = capacity.gpus_per_run()
        self._runs: dict[str, RemoteRun] = {}
        self._idle: list[IdleActor] = []
        self._datasets: dict[str, Any] = {}  # dataset key -> ObjectRef of its payload
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._pump = threading.Thread(target=self._pump_loop, name="cnnlab-ray-pump", daemon=True)
        self._pump.start()

    # The Executor protocol.

    def _new_actor(self) -> Any:
        options: dict[str, Any] = {
            "num_cpus": self.threads or 1,
            "lifetime": "detached",
            "namespace": NAMESPACE,
            "max_restarts": 0,
            "max_concurrency": 3,  # `train`, and `where`/`join` answered while it trains
        }
        if self.gpus_per_run:
            options["num_gpus"] = self.gpus_per_run
        return ray.remote(ray_remote.RunActor).options(**options).remote(self.entry, self.threads)

    def prepare(self) -> None:
        """Start a warm actor (TensorFlow imported on the cluster) unless one is waiting or warm is off."""
        with self._lock:
            if self.warm and not self._idle and not self._stopping.is_set():
                actor = self._new_actor()
                self._keep_idle(actor, actor.ready.remote())

    def _keep_idle(self, actor: Any, ready: Any) -> None:
        """Keep an actor waiting for the next run, known to the mailbox so a restarted server finds it."""
        key = f"{WARM_PREFIX}{uuid.uuid4().hex}"
        self.mailbox.register.remote(key, actor)
        self._idle.append(IdleActor(key, actor, ready))

    def wait_until_warm(self, timeout: float = 300.0) -> None:
        """Block until the warm actors waiting now have imported the job (for benchmarks and tests)."""
        with self._lock:
            references = [idle.ready for idle in self._idle]
        ray.get(references, timeout=timeout)

    @property
    def idle_actors(self) -> int:
        """How many warm actors wait for a run."""
        return len(self._idle)

    def _dataset(self, run_id: str) -> Any:
        """The run's dataset payload in the object store (put once per dataset), or None for a built-in set."""
        source = ray_bundle.dataset_source(self.store.get_run(run_id).data().dataset)
        if source is None:
            return None
        key = ray_bundle.dataset_key(source)
        if key not in self._datasets:
            self._datasets[key] = ray.put(ray_bundle.pack_dataset(source, key))
        return self._datasets[key]

    def submit(self, run_id: str) -> int:
        """Hand the run to the warm actor (or a new one) with its bundle; returns 0 (no process here)."""
        bundle = ray.put(ray_bundle.pack_run(self.store, run_id))
        dataset = self._dataset(run_id)
        self._wait_for_finishing_actors()
        with self._lock:
            if self._idle:
                # A warm actor that has started beats one still waiting for its CPUs.
                chosen = next((idle for idle in self._idle if _is_ready(idle.ready)), self._idle[0])
                self._idle.remove(chosen)
                self.mailbox.unregister.remote(chosen.key)
                actor, ready = chosen.actor, chosen.ready
            else:
                actor = self._new_actor()
                ready = actor.ready.remote()
            done = actor.train.remote(run_id, bundle, dataset, self.mailbox)
            self.mailbox.register.remote(run_id, actor)
            self._runs[run_id] = RemoteRun(actor, ready, done, actor.where.remote())
        return ray_records.REMOTE_PID

    def _wait_for_finishing_actors(self) -> None:
        """With no warm actor, wait briefly for the actor of a run that just ended to become one.

        The scheduler starts the next run as soon as a run's final status is in the store, a moment
        before its actor returns: a new actor then would wait for the CPUs the finishing one holds.
        """
        if self._idle:
            return
        with self._lock:
            finishing = [
                run for run_id, run in self._runs.items() if run.exit is None and self._ended(run_id)
            ]
        give_up = time.monotonic() + FINISHING_WAIT_SECONDS
        while finishing and not self._idle and time.monotonic() < give_up:
            if all(run.exit is not None for run in finishing):
                return
            time.sleep(0.02)

    def _ended(self, run_id: str) -> bool:
        """True if the store holds the run as ended (or no longer holds it)."""
        try:
            return self.store.get_run(run_id).is_ended
        except RunError:
            return True

    def alive(self, run_id: str) -> bool:
        """True until the run's actor has ended and everything it sent is in the store."""
        run = self._runs.get(run_id)
        return run is not None and run.exit is None

    def describe_exit(self, run_id: str) -> str:
        """How the run's actor ended ("finished: completed", "the Ray worker died: ...")."""
        run = self._runs.get(run_id)
        if run is None:
            return "not started here"
        return run.exit or "still running"

    def cancel(self, run_id: str) -> None:
        """Kill the run's actor at once (its records so far are applied by the pump)."""
        run = self._runs.get(run_id)
        if run is not None:
            with contextlib.suppress(RayError):
                ray.kill(run.actor, no_restart=True)

    def forget(self, run_id: str) -> None:
        """Drop an ended run."""
        with self._lock:
            self._runs.pop(run_id, None)

    def shutdown(self) -> None:
        """Apply what is waiting, stop the pump, let the warm actors go; training actors carry on."""
        self._stopping.set()
        self._pump.join(timeout=10)
        with self._lock:
            idle, self._idle = self._idle, []
        for waiting in idle:
            self._let_go(waiting.actor, waiting.key)

    # Beyond the protocol.

    def reattach(self) -> list[str]:
        """Follow again the runs this store's earlier server left training on the cluster; return their ids.

        Its warm actors join this executor's (up to `MAX_IDLE_ACTORS`, the others are let go); actors
        of runs the store no longer holds as live are let go too.
        """
        attached: list[str] = []
        known = {idle.key for idle in self._idle} | set(self._runs)
        for key, actor in ray.get(self.mailbox.actors.remote()).items():
            if key in known:
                continue
            with self._lock:
                if key.startswith(WARM_PREFIX) and len(self._idle) < MAX_IDLE_ACTORS:
                    self._idle.append(IdleActor(key, actor, actor.ready.remote()))
                    continue
            live = False
            if not key.startswith(WARM_PREFIX):
                with contextlib.suppress(RunError):
                    live = self.store.get_run(key).status in statuses.LIVE
            if live:
                with self._lock:
                    self._runs[key] = RemoteRun(
                        actor, actor.ready.remote(), actor.join.remote(key), actor.where.remote()
                    )
                attached.append(key)
                self.store.log_event(key, "a restarted server follows this run on the Ray cluster again")
            else:
                self._let_go(actor, key)
        return attached

    def _let_go(self, actor: Any, key: str) -> None:
        """Kill an actor and forget its mailbox key."""
        with contextlib.suppress(RayError):
            ray.kill(actor, no_restart=True)
        self.mailbox.unregister.remote(key)

    def worker_location(self, run_id: str, timeout: float = 30.0) -> dict[str, object]:
        """The run's worker: its process id, host and node-local store folder (`home`, once training)."""
        location: dict[str, object] = ray.get(self._runs[run_id].actor.where.remote(), timeout=timeout)
        return location

    # The pump.

    def _pump_loop(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            try:
                self.pump()
            except Exception:
                logger.exception("The Ray executor's pump failed once; it carries on.")
            if stopping or self._stopping.wait(self.pump_seconds):
                if not stopping:
                    continue  # One more round after shutdown asks, so nothing sent stays behind.
                return

    def pump(self) -> int:
        """One round: note ended actors, apply every waiting record, then end those runs; forward control.

        Records are applied before an ended actor's run is judged, so a run whose worker died keeps
        everything it sent. Returns the number of records applied. Polled, not woken by a blocking
        queue get in `ray.wait`: stop, pause and resume are written to SQLite by the pages, with no Ray
        event to wait on, so the pump wakes every `pump_seconds` anyway, and a get left pending when the
        server stops would take a record nobody applies.
        """
        with self._lock:
            running = {run_id: run for run_id, run in self._runs.items() if run.exit is None}
        ended: list[str] = []
        if running:
            references = [run.done for run in running.values()]
            ready, _ = ray.wait(references, num_returns=len(references), timeout=0)
            ready_set = set(ready)
            ended = [run_id for run_id, run in running.items() if run.done in ready_set]
        applied = 0
        while records := ray.get(self.mailbox.take.remote()):
            for record in records:
                applied += ray_records.apply_record(self.store, record)
        for run_id in ended:
            self._end(run_id, running[run_id])
        for run_id, run in running.items():
            if run_id not in ended:
                self._forward_control(run_id, run)
        return applied

    def _end(self, run_id: str, run: RemoteRun) -> None:
        """Judge an ended actor: a finished job (its actor may take the next run), or a dead worker.

        The live run of a dead worker becomes `failed`.
        """
        reusable = False
        try:
            result = ray.get(run.done)
            exit_description = f"finished: {result}" if result else "finished"
            reusable = self.reuse
        except RayActorError as error:
            exit_description = f"the Ray worker died: {self._where(run)}{str(error).strip().splitlines()[0]}"
            with contextlib.suppress(RunError):  # The worker may have ended the run in its last record.
                self.store.set_status(
                    run_id,
                    Status.FAILED,
                    reason=ray_records.died_reason(self._where(run), str(error)),
                    hint=ray_records.DIED_HINT,
                    expected=statuses.LIVE,
                )
                self.store.log_event(run_id, exit_description, level="error")
        except RayError as error:
            exit_description = f"the Ray task failed: {str(error).strip().splitlines()[0]}"
        with self._lock:
            if reusable and self._may_keep_idle():
                self.mailbox.unregister.remote(run_id)
                self._keep_idle(run.actor, run.ready)
            else:
                self._let_go(run.actor, run_id)
        run.exit = exit_description

    def _may_keep_idle(self) -> bool:
        """Whether an actor that finished a run may wait for the next one.

        Not while a run waits for its own actor to be placed (an actor not ready yet, and no CPUs
        free for it): an idle actor would hold the CPUs it needs. A warm actor not ready yet gives
        way to the finished one, which is.
        """
        if self._stopping.is_set():
            return False
        unplaced = any(run.exit is None and not _is_ready(run.ready) for run in self._runs.values())
        if unplaced and float(ray.available_resources().get("CPU", 0.0)) < (self.threads or 1):
            return False
        for waiting in [idle for idle in self._idle if not _is_ready(idle.ready)]:
            self._idle.remove(waiting)
            self._let_go(waiting.actor, waiting.key)
        return len(self._idle) < MAX_IDLE_ACTORS

    @staticmethod
    def _where(run: RemoteRun) -> str:
        """ "process 123 on host-name, " when the actor told it before it died, else nothing."""
        try:
            location = ray.get(run.location, timeout=0)
        except (RayError, GetTimeoutError):
            return ""
        return f"process {location['pid']} on {location['host']}, "

    def _forward_control(self, run_id: str, run: RemoteRun) -> None:
        """Send the store's control request to the mailbox when it changed."""
        action = self.store.pending_control(run_id)
        if action != run.forwarded_control:
            if action is not None:
                self.mailbox.set_control.remote(run_id, action)
            run.forwarded_control = action

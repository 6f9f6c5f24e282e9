"""`RayExecutor`: the scheduler's runs as Ray actors on a cluster that shares no disk with the server.

Chosen with `CNNLAB_EXECUTOR=ray` (`cnnlab.runs.queue.executor_choice`) on Ray's own `RAY_ADDRESS`. Each
run is trained by a detached `RunActor` (`cnnlab.runs.ray.remote`) asking for one CPU (or
`CNNLAB_RAY_CPUS_PER_RUN`, `cnnlab.runs.ray.placement`) and, where runs use one, a GPU. A warm actor
(TensorFlow imported) waits for the next run, and one that ended a run takes the next, as Ray Tune's
`reuse_actors`. The run's rows and files (`ray_bundle.pack_run`) and an uploaded dataset (put once
per dataset) reach the node through Ray's object store.

Records come back through each run's own channel, inside its actor: no actor is shared between
runs, so a node that dies ends only its own runs. A pump thread here long-polls every run's
channel at once with `ray.wait`, applies the records, in order, to the server's store (the one
writer), and acknowledges them with the next `take`; it forwards stop, pause and resume the other
way. A run whose actor dies (its process killed, its node gone) is marked `failed` with where and
why, after every record it sent is applied. A run no node can hold is refused at once; one that
waits longer than `CNNLAB_RAY_PLACEMENT_SECONDS` for a node, or is stopped while it waits, ends
then. Actors are detached and named after the store: a restarted server `reattach`es to the runs
still training; the scheduler marks the others `interrupted` once their heartbeat is stale.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import os
import socket
import threading
import time
import uuid
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayError

from cnnlab.errors import RunError
from cnnlab.runs.queue import capacity
from cnnlab.runs.queue.job import DEFAULT_ENTRY
from cnnlab.runs.ray import bundle as ray_bundle
from cnnlab.runs.ray import placement
from cnnlab.runs.ray import records as ray_records
from cnnlab.runs.ray import remote as ray_remote
from cnnlab.store import statuses
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

logger = logging.getLogger(__name__)

NAMESPACE = "cnnlab"
PUMP_SECONDS = (
    0.1  # the longest the pump waits for records before it forwards control and checks waiting runs
)
TAKE_SECONDS = 2.0  # how long one `take` waits on the node for a record
ANSWER_SECONDS = 30.0  # how long the pump waits for an answer it knows is ready or due
# A submit waits this long at most for an actor whose run just ended (it sends its last records first). Long:
# the wait ends as soon as the actor is back or dead, and a new actor instead imports TensorFlow while the
# old one still holds its CPUs (on a loaded machine the 5 s this was gave a third worker for 8 runs).
FINISHING_WAIT_SECONDS = 30.0
NODE_ANSWER_SECONDS = (
    2.0  # how long a node's raylet may take to accept a connection before it counts as stopped
)
MAX_IDLE_ACTORS = 1  # warm actors kept waiting at most (each holds its CPUs on the cluster)


@dataclasses.dataclass
class RemoteRun:
    """What the executor keeps about one run on the cluster."""

    actor: Any
    ready: Any  # the ObjectRef of the actor's `warm_up()`: ready once it has started and imported the job
    done: Any  # the ObjectRef of `train` (or, after a reattach, of `join`)
    location: Any  # the ObjectRef of the actor's `where()`
    placed: Any = None  # the ObjectRef of the actor's `placed()`: ready once a node has started it
    submitted_at: float = dataclasses.field(default_factory=time.monotonic)
    taking: Any = None  # the ObjectRef of the `take` waiting on the node, None once drained
    acknowledged: int | None = 0  # records applied so far (None: unknown, after a reattach)
    forwarded_control: str | None = None
    exit: str | None = None  # how it ended, once it has


@dataclasses.dataclass(frozen=True)
class IdleActor:
    """A warm actor waiting for a run, with the ObjectRef of its `warm_up()`."""

    actor: Any
    ready: Any


def _is_ready(reference: Any) -> bool:
    """True once an ObjectRef has its value (or its error)."""
    ready, _ = ray.wait([reference], timeout=0)
    return bool(ready)


def actor_prefix(store: Store) -> str:
    """The names of one CNN Lab home's actors start with this: servers with different homes can share a cluster."""
    return "cnnlab-" + hashlib.sha256(str(store.home.resolve()).encode()).hexdigest()[:12] + "-"


def _node_answers(node_id: str) -> bool:
    """True if the Ray node is alive and its raylet takes connections.

    A node whose raylet has died takes its workers with it at once, but the cluster counts it
    alive until its health checks have failed for several seconds; its port answers at once.
    """
    for node in ray.nodes():
        if node.get("NodeID") == node_id:
            if not node.get("Alive"):
                return False
            try:
                address = (str(node["NodeManagerAddress"]), int(node["NodeManagerPort"]))
                with socket.create_connection(address, timeout=NODE_ANSWER_SECONDS):
                    return True
            except (OSError, KeyError, ValueError):
                return False
    return False


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class RayExecutor:
    """Runs each worker as a Ray actor and pumps its records into `store` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        address: str | None = None,
        entry: str = DEFAULT_ENTRY,
        threads: int | None = None,
        cpus_per_run: float | None = None,
        placement_seconds: float | None = None,
        warm: bool = True,
        reuse: bool = True,
        pump_seconds: float = PUMP_SECONDS,
    ) -> None:
        self.store = store
        self.entry = entry
        self.cpus_per_run = cpus_per_run if cpus_per_run is not None else placement.cpus_per_run()
        self.placement_seconds = (
            placement_seconds if placement_seconds is not None else placement.placement_seconds()
        )
        self.threads = threads or max(1, math.floor(self.cpus_per_run))
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
        self.prefix = actor_prefix(store)
        self.gpus_per_run = capacity.gpus_per_run()
        self._runs: dict[str, RemoteRun] = {}
        self._idle: list[IdleActor] = []
        self._datasets: dict[str, Any] = {}  # dataset key -> ObjectRef of its payload
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # an actor became idle or a run ended
        self._stopping = threading.Event()
        self._last_checks = 0.0
        self._pump = threading.Thread(target=self._pump_loop, name="cnnlab-ray-pump", daemon=True)
        self._pump.start()

    # The Executor protocol.

    def _new_actor(self) -> Any:
        options: dict[str, Any] = {
            "name": f"{self.prefix}{uuid.uuid4().hex[:12]}",
            "num_cpus": self.cpus_per_run,
            "lifetime": "detached",
            "namespace": NAMESPACE,
            "max_restarts": 0,
            "max_concurrency": 8,  # `train`, and `take`, `set_control`, `where`, `join` answered while it trains
        }
        if self.gpus_per_run:
            options["num_gpus"] = self.gpus_per_run
        return ray.remote(ray_remote.RunActor).options(**options).remote(self.entry, self.threads)

    def prepare(self) -> None:
        """Start a warm actor (TensorFlow imported on the cluster) unless one is waiting, warm is off or no CPUs are free."""
        with self._lock:
            if not self.warm or self._idle or self._stopping.is_set():
                return
        if float(ray.available_resources().get("CPU", 0.0)) < self.cpus_per_run:
            return  # It would wait for CPUs that a run about to end holds, then compete with its actor.
        with self._lock:
            if not self._idle:
                actor = self._new_actor()
                self._idle.append(IdleActor(actor, actor.warm_up.remote()))

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
        """Hand the run to the warm actor (or a new one) with its bundle; returns 0 (no process here).

        A run no node of the cluster could hold is marked `failed` at once, saying why.
        """
        refusal = placement.never_placeable(ray.nodes(), self.cpus_per_run, self.gpus_per_run)
        if refusal is not None:
            self._refuse(run_id, refusal)
            return ray_records.REMOTE_PID
        bundle = ray.put(ray_bundle.pack_run(self.store, run_id))
        dataset = self._dataset(run_id)
        self._wait_for_finishing_actors()
        with self._lock:
            if self._idle:
                # A warm actor that has started beats one still waiting for its CPUs.
                chosen = next((idle for idle in self._idle if _is_ready(idle.ready)), self._idle[0])
                self._idle.remove(chosen)
                actor, ready = chosen.actor, chosen.ready
            else:
                actor = self._new_actor()
                ready = actor.warm_up.remote()
            done = actor.train.remote(run_id, bundle, dataset)
            run = RemoteRun(actor, ready, done, actor.where.remote(), placed=actor.placed.remote())
            run.taking = actor.take.remote(run_id, 0, TAKE_SECONDS)
            self._runs[run_id] = run
        return ray_records.REMOTE_PID

    def _refuse(self, run_id: str, reason: str) -> None:
        """End a run that will never be placed (failed, with the reason), as if its actor had ended."""
        with contextlib.suppress(RunError):
            self.store.set_status(
                run_id, Status.FAILED, reason=reason, expected=(Status.QUEUED, Status.STARTING)
            )
            self.store.log_event(run_id, reason, level="error")
        with self._lock:
            self._runs[run_id] = RemoteRun(None, None, None, None, exit=f"not placed: {reason}")

    def _wait_for_finishing_actors(self) -> None:
        """With no warm actor, wait briefly for the actor of a run that just ended to become one.

        The scheduler starts the next run as soon as a run's final status is in the store, a moment
        before its actor returns: a new actor then would wait for the CPUs the finishing one holds.
        """
        with self._changed:
            finishing = [
                run for run_id, run in self._runs.items() if run.exit is None and self._ended(run_id)
            ]
            self._changed.wait_for(
                lambda: bool(self._idle) or all(run.exit is not None for run in finishing),
                FINISHING_WAIT_SECONDS,
            )

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
        if run is not None and run.actor is not None:
            with contextlib.suppress(RayError):
                ray.kill(run.actor, no_restart=True)

    def forget(self, run_id: str) -> None:
        """Drop an ended run."""
        with self._lock:
            self._runs.pop(run_id, None)

    def shutdown(self) -> None:
        """Apply what is waiting, stop the pump, let the warm actors go; actors of live runs carry on.

        An actor whose run has ended (a CLI stopped it on Ctrl-C) goes too: detached, it would hold its
        CPUs on the cluster for ever.
        """
        self._stopping.set()
        self._pump.join(timeout=10)
        with self._lock:
            idle, self._idle = self._idle, []
            finishing = [
                run.actor
                for run_id, run in self._runs.items()
                if run.exit is None and run.actor is not None and not self._live(run_id)
            ]
        for actor in [waiting.actor for waiting in idle] + finishing:
            self._let_go(actor)

    # Beyond the protocol.

    def reattach(self) -> list[str]:
        """Follow again the runs this store's earlier server left training on the cluster; return their ids.

        Its warm actors join this executor's (up to `MAX_IDLE_ACTORS`, the others are let go); actors
        whose runs the store no longer holds as live are let go too.
        """
        attached: list[str] = []
        with self._lock:
            known = {run.actor for run in self._runs.values() if run.actor is not None}
            known |= {idle.actor for idle in self._idle}  # Handles compare by actor id.
        for entry in ray.util.list_named_actors(all_namespaces=True):
            if entry.get("namespace") != NAMESPACE or not str(entry.get("name")).startswith(self.prefix):
                continue
            try:
                actor = ray.get_actor(entry["name"], namespace=NAMESPACE)
                if actor in known:
                    continue
                runs: list[str] = ray.get(actor.runs.remote(), timeout=ANSWER_SECONDS)
            except (RayError, GetTimeoutError, ValueError):
                continue
            live = [run_id for run_id in runs if self._live(run_id)]
            if not runs and len(self._idle) < MAX_IDLE_ACTORS:
                with self._lock:
                    self._idle.append(IdleActor(actor, actor.warm_up.remote()))
                continue
            if not live:
                self._let_go(actor)
                continue
            for run_id in live:
                run = RemoteRun(
                    actor, actor.warm_up.remote(), actor.join.remote(run_id), actor.where.remote()
                )
                run.acknowledged = None  # What the earlier server applied is not known: take all that waits.
                run.taking = actor.take.remote(run_id, None, TAKE_SECONDS)
                with self._lock:
                    self._runs[run_id] = run
                attached.append(run_id)
                self.store.log_event(run_id, "a restarted server follows this run on the Ray cluster again")
        return attached

    def _live(self, run_id: str) -> bool:
        try:
            return self.store.get_run(run_id).status in statuses.LIVE
        except RunError:
            return False

    @staticmethod
    def _let_go(actor: Any) -> None:
        """Kill an actor (its name goes with it)."""
        with contextlib.suppress(RayError):
            ray.kill(actor, no_restart=True)

    def worker_location(self, run_id: str, timeout: float = 30.0) -> dict[str, object]:
        """The run's worker: its process id, host, Ray node and node-local store folder (`home`, once training)."""
        location: dict[str, object] = ray.get(self._runs[run_id].actor.where.remote(), timeout=timeout)
        return location

    # The pump.

    def _pump_loop(self) -> None:
        failures: dict[str, int] = {}
        while True:
            stopping = self._stopping.is_set()
            try:
                self.pump(0.0 if stopping else self.pump_seconds)
            except Exception as error:
                # Logged once per kind of failure, not once a round: a broken cluster must not flood the log.
                key = f"{type(error).__name__}: {_first_line(error)}"
                failures[key] = failures.get(key, 0) + 1
                if failures[key] == 1:
                    logger.exception("The Ray executor's pump failed; it carries on.")
                self._stopping.wait(self.pump_seconds)
            if stopping:
                return

    def pump(self, wait: float = 0.0) -> int:
        """One round: wait up to `wait` s for records or ended actors, apply them, then judge ended runs.

        Every run's pending `take` and `train` are waited on together (`ray.wait`), so records are
        applied as soon as the node has them. Records are applied before an ended actor's run is
        judged, so a run whose worker died keeps everything it sent. At most every `pump_seconds`
        it also forwards control requests (written to SQLite by the pages) and ends runs that wait
        too long for a node. Returns the number of records applied.
        """
        with self._lock:
            running = {run_id: run for run_id, run in self._runs.items() if run.exit is None}
        references = [run.taking for run in running.values() if run.taking is not None]
        references += [run.done for run in running.values()]
        if references:
            ray.wait(references, num_returns=1, timeout=wait)
            ready, _ = ray.wait(references, num_returns=len(references), timeout=0)
        else:
            self._stopping.wait(wait)
            ready = []
        ready_set = set(ready)
        applied = 0
        for run_id, run in running.items():
            if run.taking is not None and run.taking in ready_set:
                applied += self._receive(run_id, run)
        for run_id, run in running.items():
            if run.done in ready_set:
                applied += self._end(run_id, run)
        if time.monotonic() - self._last_checks >= self.pump_seconds:
            self._last_checks = time.monotonic()
            for run_id, run in running.items():
                if run.exit is None:
                    self._forward_control(run_id, run)
                    self._check_placement(run_id, run)
        return applied

    def _receive(self, run_id: str, run: RemoteRun) -> int:
        """Apply the records a `take` brought and ask for the next ones (acknowledging these)."""
        try:
            first, records, closed = ray.get(run.taking, timeout=ANSWER_SECONDS)
        except ActorUnavailableError:
            run.taking = run.actor.take.remote(run_id, run.acknowledged, TAKE_SECONDS)
            return 0
        except (RayError, GetTimeoutError):
            run.taking = None  # The actor is gone; `_end` judges its run.
            return 0
        skip = 0 if run.acknowledged is None else max(0, run.acknowledged - first)
        applied = sum(ray_records.apply_record(self.store, record) for record in records[skip:])
        run.acknowledged = first + len(records)
        if closed and not records:
            run.taking = None
        else:
            run.taking = run.actor.take.remote(run_id, run.acknowledged, 0.0 if closed else TAKE_SECONDS)
        return applied

    def _end(self, run_id: str, run: RemoteRun) -> int:
        """Judge an ended actor: a finished job (its actor may take the next run), or a dead worker.

        Everything the channel still holds is applied first. The live run of a dead worker becomes
        `failed`, saying whether its process or its whole node stopped.
        """
        reusable = False
        applied = 0
        try:
            result = ray.get(run.done, timeout=ANSWER_SECONDS)
            while run.taking is not None:
                applied += self._receive(run_id, run)
            exit_description = f"finished: {result}" if result else "finished"
            reusable = self.reuse
        except RayActorError as error:
            if run.taking is not None:  # Records already on the way are kept; a take still waiting fails.
                applied += self._receive(run_id, run)
                run.taking = None
            where = self._where(run)
            reason = self._death_reason(run, where, error)
            exit_description = f"{reason} ({_first_line(error)})"
            with contextlib.suppress(RunError):  # The worker may have ended the run in its last record.
                self.store.set_status(
                    run_id, Status.FAILED, reason=reason, hint=ray_records.DIED_HINT, expected=statuses.LIVE
                )
                self.store.log_event(run_id, exit_description, level="error")
        except (RayError, GetTimeoutError) as error:
            exit_description = f"the Ray task failed: {_first_line(error)}"
        with self._changed:
            if reusable and self._may_keep_idle(run):
                self._idle.append(IdleActor(run.actor, run.ready))
            else:
                self._let_go(run.actor)
            run.exit = exit_description
            self._changed.notify_all()
        return applied

    def _death_reason(self, run: RemoteRun, where: str, error: RayActorError) -> str:
        """ "The Ray node running it stopped: ..." when its node left the cluster, else the worker's death."""
        node = self._location(run).get("node")
        if node is not None and not _node_answers(str(node)):
            return ray_records.node_stopped_reason(where, _first_line(error))
        return ray_records.died_reason(where, str(error))

    def _may_keep_idle(self, finished: RemoteRun) -> bool:
        """Whether the actor of run `finished` may wait for the next run.

        Not when the cluster's CPUs cannot hold it beside every other actor of this executor: a run
        would then wait for the CPUs it holds. (Not judged by whether other actors have answered:
        on a busy node an actor that has its CPUs may still be starting, and one that finished was
        let go for it, so a third actor imported TensorFlow for 8 runs.) A warm actor not ready yet
        gives way to the finished one, which is.
        """
        if self._stopping.is_set():
            return False
        # The finished actor, the warm ones, and those of the other runs still going.
        actors = 1 + len(self._idle)
        actors += sum(
            1
            for run in self._runs.values()
            if run is not finished and run.exit is None and run.actor is not None
        )
        if actors * self.cpus_per_run > float(ray.cluster_resources().get("CPU", 0.0)):
            return False
        for waiting in [idle for idle in self._idle if not _is_ready(idle.ready)]:
            self._idle.remove(waiting)
            self._let_go(waiting.actor)
        return len(self._idle) < MAX_IDLE_ACTORS

    @staticmethod
    def _location(run: RemoteRun) -> dict[str, Any]:
        """What the actor said of where it runs, or nothing if it never answered."""
        try:
            location: dict[str, Any] = ray.get(run.location, timeout=0)
        except (RayError, GetTimeoutError):
            return {}
        return location

    def _where(self, run: RemoteRun) -> str:
        """ "process 123 on host-name, " when the actor told it before it died, else nothing."""
        location = self._location(run)
        return f"process {location['pid']} on {location['host']}, " if location else ""

    def _check_placement(self, run_id: str, run: RemoteRun) -> None:
        """End a run whose actor no node has started within the limit, or that was stopped while it waited.

        Only the wait for a node counts: an actor importing TensorFlow on a busy node is placed.
        """
        if run.placed is None or _is_ready(run.placed):
            return
        stop = self.store.pending_control(run_id) == "stop"
        waited = time.monotonic() - run.submitted_at
        if not stop and waited < self.placement_seconds:
            return
        if stop:
            status, reason = Status.STOPPED, "Stopped by the user while it waited for a Ray node to take it."
        else:
            resources, free = ray.cluster_resources(), ray.available_resources()
            status = Status.FAILED
            reason = placement.not_placed(
                waited, self.cpus_per_run, float(resources.get("CPU", 0.0)), float(free.get("CPU", 0.0))
            )
        self._let_go(run.actor)
        with contextlib.suppress(RunError):
            self.store.set_status(run_id, status, reason=reason, expected=statuses.LIVE)
            self.store.clear_control(run_id, "stop")
            self.store.log_event(run_id, reason, level="error" if status == Status.FAILED else "info")
        with self._changed:
            run.exit = f"not placed: {reason}"
            self._changed.notify_all()

    def _forward_control(self, run_id: str, run: RemoteRun) -> None:
        """Send the store's control request to the run's actor when it changed."""
        action = self.store.pending_control(run_id)
        if action != run.forwarded_control:
            if action is not None:
                run.actor.set_control.remote(run_id, action)
            run.forwarded_control = action

"""The Ray executor on a real local Ray cluster: a node that stops, runs no node can take, real digits runs
with records streamed back, control, a killed worker.

One cluster for the session (tests/ray_fixtures.py: `ray start --head --num-cpus 2` with its own temp dir
and ports, stopped at the end). The first tests use light jobs (tests/fake_jobs.py, no TensorFlow) on
executors of their own: one adds a second node to the cluster and stops it mid-run; others ask for
more CPUs than a node has. The rest share one scheduler over a `RayExecutor` with one CPU per run,
so two digits runs train at once. The runs share no disk with the test's store on purpose: each worker
records into a node-local store in a temporary folder and sends every record back over Ray; the test's
store is written only by the executor's pump. The node-local store of a killed worker stays on disk,
which gives the oracle for "no recorded metric is lost".
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import fake_jobs
import pytest
from ray_cluster import LocalRayCluster
from ray_fixtures import require_ray
from waiting import wait_until

from cnnlab import specs
from cnnlab.errors import RunError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import executor_choice, sweeps
from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.runs.queue.sweep_plan import axis, plan
from cnnlab.store import statuses
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.trained import exports
from tests.made_runs import TINY_DIGITS_SPEC as SPEC

if TYPE_CHECKING:
    from cnnlab.runs.ray.executor import RayExecutor

require_ray()  # Skips the module where Ray is not installed (never in CI).
pytestmark = pytest.mark.slow

LONG = specs.TrainingSettings(epochs=40, batch_size=16)  # far longer than any test lets it run


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("ray_home"))


@pytest.fixture(scope="module")
def executor(ray_cluster: LocalRayCluster, store: Store) -> Iterator[RayExecutor]:
    from cnnlab.runs.ray.executor import RayExecutor

    running = RayExecutor(store, address=ray_cluster.address, threads=1, warm=False)
    yield running
    running.shutdown()


@pytest.fixture(scope="module")
def scheduler(executor: RayExecutor, store: Store) -> Iterator[Scheduler]:
    target = Scheduler(store, executor, max_workers=2, poll_seconds=0.1).start()
    yield target
    target.shutdown(kill_workers=True)


@pytest.fixture(scope="module")
def long_runs(scheduler: Scheduler) -> dict[str, str]:
    """Two long digits runs started together (their actors import TensorFlow at the same time)."""
    return {
        role: scheduler.submit(
            RunRequest(spec=SPEC, data_settings=specs.DataSettings(), training_settings=LONG, name=role)
        ).id
        for role in ("controlled", "killed")
    }


LIGHT_JOB = "tests.fake_jobs:counting_job"  # 10 batches an epoch, 20 ms each; no TensorFlow


def _light(epochs: int, name: str = "light") -> RunRequest:
    return RunRequest(
        spec=SPEC,
        data_settings=specs.DataSettings(),
        training_settings=specs.TrainingSettings(epochs=epochs),
        name=name,
    )


@contextlib.contextmanager
def _light_scheduler(
    cluster: LocalRayCluster, home: Path, **options: float
) -> Iterator[tuple[Scheduler, RayExecutor]]:
    """A scheduler over an executor of light jobs that keeps no actor once a run ends."""
    from cnnlab.runs.ray.executor import RayExecutor

    store = Store(home)
    executor = RayExecutor(
        store, address=cluster.address, entry=LIGHT_JOB, threads=1, warm=False, reuse=False, **options
    )
    scheduler = Scheduler(store, executor, max_workers=2, poll_seconds=0.1).start()
    try:
        yield scheduler, executor
    finally:
        scheduler.shutdown(kill_workers=True)


@contextlib.contextmanager
def _head_taken(cpus: int = 2) -> Iterator[None]:
    """Hold the head node's CPUs with an actor pinned to it, so runs go to (or wait for) another node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from tests.ray_cluster import HeadHolder  # By its package's name, which Ray's workers can import.

    head = ray.get_runtime_context().get_node_id()  # The tests' driver is connected to the head.
    holder = (
        ray.remote(num_cpus=cpus)(HeadHolder)
        .options(scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False))
        .remote()
    )
    ray.get(holder.ready.remote(), timeout=120)
    try:
        yield
    finally:
        ray.kill(holder)


def test_a_node_that_stops_ends_its_run_with_the_reason_and_keeps_every_record_it_sent(
    ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    node = ray_cluster.add_worker_node(num_cpus=1)
    with _light_scheduler(ray_cluster, tmp_path / "home") as (scheduler, executor):
        store = scheduler.store
        with _head_taken():
            run_id = scheduler.submit(_light(epochs=500)).id
            wait_until(lambda: len(store.epoch_metrics(run_id)) >= 2, "two epochs on the second node")
        import ray

        location = executor.worker_location(run_id)
        assert location["node"] != ray.get_runtime_context().get_node_id()  # Not on the head.
        node.raylet().kill()  # The node leaves the cluster, its worker with it.
        ended = wait_until(
            lambda: (run := store.get_run(run_id)).is_ended and run, "the run of the stopped node to end"
        )
        assert ended.status == Status.FAILED
        assert ended.reason is not None and ended.reason.startswith(
            f"The Ray node running it stopped: process {location['pid']} on "
        ), ended.reason
        # The server applies records in order and an epoch waits until it holds the one before: every epoch
        # on the server has all its batches, and at most the node's last epoch can be missing.
        node_store = Store(Path(str(location["home"])))
        node_epochs = node_store.epoch_metrics(run_id)["epoch"].tolist()
        server_epochs = store.epoch_metrics(run_id)["epoch"].tolist()
        assert (
            server_epochs == node_epochs[: len(server_epochs)] and len(node_epochs) - len(server_epochs) <= 1
        )
        server_steps = store.batch_metrics(run_id)["step"].tolist()
        assert server_steps == sorted(set(server_steps))
        assert set(server_steps) >= set(range(len(server_epochs) * fake_jobs.BATCHES_PER_EPOCH))
        assert set(server_steps) <= set(node_store.batch_metrics(run_id)["step"])
        # The head, free again, trains the next run.
        following = scheduler.submit(_light(epochs=2, name="after the node stopped"))
        finished = scheduler.wait(following.id, timeout=120)
        assert finished.status == Status.COMPLETED, (finished.reason, finished.traceback)
        assert store.epoch_metrics(following.id)["epoch"].tolist() == [1, 2]


def test_a_run_no_node_can_hold_leaves_the_queue_saying_why(
    ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    with _light_scheduler(ray_cluster, tmp_path / "home", cpus_per_run=3) as (scheduler, _):
        refused = scheduler.submit(_light(epochs=1))
        ended = scheduler.wait(refused.id, timeout=60)
        assert ended.status == Status.FAILED
        assert ended.reason is not None and ended.reason.startswith(
            "No Ray node has 3 CPUs for this run; the largest has 2. Lower CNNLAB_RAY_CPUS_PER_RUN to 2"
        ), ended.reason
        assert scheduler.store.count_runs(statuses.OCCUPYING) == 0  # It holds no slot.


def test_a_run_waiting_for_cpus_ends_at_the_limit_or_when_stopped(
    ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    with (
        _light_scheduler(ray_cluster, tmp_path / "home", cpus_per_run=2, placement_seconds=3) as (
            scheduler,
            _,
        ),
        _head_taken(),
    ):
        waiting, stopped = (scheduler.submit(_light(epochs=1, name=name)) for name in ("waits", "stopped"))
        wait_until(
            lambda: scheduler.store.get_run(stopped.id).status == Status.STARTING, "the run to be handed over"
        )
        scheduler.stop(stopped.id)
        ended = scheduler.wait(stopped.id, timeout=60)
        assert ended.status == Status.STOPPED
        assert ended.reason == "Stopped by the user while it waited for a Ray node to take it."
        timed_out = scheduler.wait(waiting.id, timeout=60)
        assert timed_out.status == Status.FAILED
        assert timed_out.reason is not None
        assert re.match(
            r"No Ray node freed 2 CPUs for this run within 3 s \(the cluster has \d CPUs, 0 free",
            timed_out.reason,
        ), timed_out.reason
        assert scheduler.store.count_runs(statuses.OCCUPYING) == 0


def _batches(store: Store, run_id: str) -> int:
    return len(store.batch_metrics(run_id))


def _ray_worker(store: Store, run_id: str) -> str:
    """ "Ray worker process N on HOST", from the event the worker logs when it takes the run."""
    messages = [text for text in store.events(run_id)["message"] if text.startswith("Ray worker process")]
    assert len(messages) == 1, messages
    return messages[0].removesuffix(" took the run")


def test_curves_arrive_in_the_store_while_the_run_trains_on_the_cluster(
    store: Store, long_runs: dict[str, str]
) -> None:
    run_id = long_runs["controlled"]
    # The first wait covers two actors importing TensorFlow at once, on a machine other suites load too.
    wait_until(
        lambda: _batches(store, run_id) >= 3, "batch metrics of the Ray run in the server's store", 300
    )
    run = store.get_run(run_id)
    assert run.status in (Status.RUNNING, Status.PAUSED)
    assert run.worker_pid == 0  # No process of this machine is judged for it: the executor watches the actor.
    steps = store.batch_metrics(run_id)["step"].tolist()
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # Applied in the order they were written.
    assert _ray_worker(store, run_id).startswith("Ray worker process")
    assert run.dataset_summary is not None


def test_a_restarted_server_follows_the_runs_still_training_on_the_cluster(
    store: Store, long_runs: dict[str, str]
) -> None:
    wait_until(lambda: _batches(store, long_runs["killed"]) >= 1, "the second run to train")
    from cnnlab.runs.ray.executor import RayExecutor

    # A second executor on the same store stands for the server after a restart: the runs are found again.
    restarted = RayExecutor(store, threads=1, warm=False)
    try:
        attached = restarted.reattach()
        assert set(long_runs.values()) <= set(attached)
        assert restarted.alive(long_runs["killed"])
        assert restarted.reattach() == []  # Once followed, a run is not attached twice.
    finally:
        restarted.shutdown()
    messages = store.events(long_runs["killed"])["message"].tolist()
    assert "a restarted server follows this run on the Ray cluster again" in messages


def test_pause_resume_and_stop_reach_the_worker_on_the_cluster(
    scheduler: Scheduler, store: Store, long_runs: dict[str, str]
) -> None:
    run_id = long_runs["controlled"]
    wait_until(lambda: store.get_run(run_id).status == Status.RUNNING, "the run to be running")
    scheduler.pause(run_id)
    wait_until(lambda: store.get_run(run_id).status == Status.PAUSED, "the worker to pause")
    # The worker answered the request, through a record that follows the status.
    wait_until(lambda: store.pending_control(run_id) is None, "the pause request to be answered")
    paused_at = _batches(store, run_id)
    scheduler.resume(run_id)
    wait_until(lambda: store.get_run(run_id).status == Status.RUNNING, "the worker to resume")
    wait_until(lambda: _batches(store, run_id) > paused_at, "batches after the resume")
    scheduler.stop(run_id)
    stopped = scheduler.wait(run_id, timeout=120)
    assert stopped.status == Status.STOPPED
    assert stopped.reason is not None and stopped.reason.startswith("Stopped by the user")
    assert "latest" in store.checkpoints(run_id)  # Sent back, so the run can be continued.
    assert store.checkpoint_path(run_id, "latest").is_file()


def test_killing_the_ray_worker_fails_the_run_and_keeps_every_record_it_wrote(
    scheduler: Scheduler, store: Store, executor: RayExecutor, long_runs: dict[str, str]
) -> None:
    run_id = long_runs["killed"]
    wait_until(lambda: len(store.epoch_metrics(run_id)) >= 1, "a whole epoch of the run to be recorded")
    # Paused, the job has sent all it wrote before its status, and the server applies records in order:
    # once it holds `paused`, it holds the rest, so the oracle below is exact.
    scheduler.pause(run_id)
    wait_until(lambda: store.get_run(run_id).status == Status.PAUSED, "the worker to pause")
    location = executor.worker_location(run_id)
    node_home = Path(str(location["home"]))
    assert node_home.is_dir() and node_home != store.home  # The worker records into its own node-local store.
    os.kill(int(str(location["pid"])), signal.SIGKILL)
    failed = wait_until(
        lambda: (run := store.get_run(run_id)).status == Status.FAILED and run,
        "the run of the killed Ray worker to be marked failed",
    )
    assert failed.reason is not None and "The Ray worker running it died" in failed.reason
    assert f"process {location['pid']}" in failed.reason
    assert failed.hint is not None and "fork it" in failed.hint
    # The oracle: everything the worker recorded on its node before the pause is in the server's store.
    node_store = Store(node_home)
    node_steps = set(node_store.batch_metrics(run_id)["step"])
    server_steps = set(store.batch_metrics(run_id)["step"])
    assert node_steps and node_steps <= server_steps
    node_epochs = node_store.epoch_metrics(run_id)["epoch"].tolist()
    assert node_epochs and node_epochs == store.epoch_metrics(run_id)["epoch"].tolist()[: len(node_epochs)]
    assert set(node_store.checkpoints(run_id).items()) <= set(store.checkpoints(run_id).items())
    assert node_store.snapshot_epochs(run_id, "kernels") == store.snapshot_epochs(run_id, "kernels")


def test_a_fork_takes_its_parents_weights_to_the_node_and_completes(
    scheduler: Scheduler, executor: RayExecutor, store: Store, long_runs: dict[str, str]
) -> None:
    killed, stopped = long_runs["killed"], long_runs["controlled"]
    wait_until(lambda: store.get_run(killed).status == Status.FAILED, "the killed run to have failed")
    wait_until(lambda: executor.idle_actors >= 1, "the stopped run's actor to wait for the next run")
    fork = scheduler.fork(killed, 1, specs.TrainingSettings(epochs=2, batch_size=16))
    ended = scheduler.wait(fork.id, timeout=240)
    assert ended.status == Status.COMPLETED, (ended.reason, ended.traceback)
    assert store.epoch_metrics(fork.id)["epoch"].tolist() == [1, 2]  # The parent's epoch 1, then its own.
    assert f"forked from run {killed} at epoch 1" in " ".join(store.events(fork.id)["message"])
    # The actor of the stopped run trained the fork: TensorFlow was not imported again.
    assert _ray_worker(store, fork.id) == _ray_worker(store, stopped)
    results = store.get_run(fork.id).results
    assert results is not None and 0.0 <= float(results["test_accuracy"]) <= 1.0
    assert store.snapshot_epochs(fork.id, "confusion") == [2]
    assert store.get_run(stopped).status == Status.STOPPED
    # The TensorBoard logs Keras wrote on the node came back into the run's folder here.
    assert exports.has_tensorboard_logs(store, fork.id)


def test_a_sweep_trains_every_run_on_the_cluster(
    scheduler: Scheduler, store: Store, long_runs: dict[str, str]
) -> None:
    """What the removed tests/e2e/test_sweeps_ray.py checked beyond the browser sweep (tests/e2e/test_sweeps.py):
    the runs of a sweep, submitted through the scheduler as the Train page submits them, all train
    on the cluster, two at a time."""
    wait_until(
        lambda: all(store.get_run(run_id).is_ended for run_id in long_runs.values()), "the long runs to end"
    )
    planned = plan(
        SPEC, specs.TrainingSettings(epochs=1, batch_size=32), [axis("learning_rate", "1e-3,1e-2")]
    )
    book = sweeps.Sweeps(store)
    sweep, queued = sweeps.submit(
        planned, scheduler, book, data_settings=specs.DataSettings(subset=120), name="on ray", owner="ann"
    )
    assert len(queued) == 2
    for run in queued:
        ended = scheduler.wait(run.id, timeout=240)
        assert ended.status == Status.COMPLETED, (ended.reason, ended.traceback)
        assert ended.worker_pid == 0  # No process of the server's machine trained it.
        assert _ray_worker(store, run.id).startswith("Ray worker process")
    assert all(item.best_val_accuracy is not None for item in book.runs(sweep.id))


def test_the_executor_is_chosen_by_cnnlab_executor(
    ray_cluster: LocalRayCluster, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnlab.runs.ray.executor import RayExecutor

    monkeypatch.delenv("CNNLAB_EXECUTOR", raising=False)
    assert isinstance(executor_choice.choose_executor(store, warm=False), LocalProcessExecutor)
    monkeypatch.setenv(
        "CNNLAB_EXECUTOR", "ray"
    )  # The server's scheduler then trains on RAY_ADDRESS's cluster.
    chosen = executor_choice.choose_executor(Store(tmp_path), warm=False)
    try:
        assert isinstance(chosen, RayExecutor)
    finally:
        chosen.shutdown()
    monkeypatch.setenv("CNNLAB_EXECUTOR", "slurm")
    with pytest.raises(RunError, match="'local' or 'ray'; got 'slurm'"):
        executor_choice.choose_executor(store, warm=False)

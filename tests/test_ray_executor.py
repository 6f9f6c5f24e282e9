"""The Ray executor on a real local Ray cluster: real digits runs, records streamed back, control, a killed worker.

One cluster for the session (tests/ray_fixtures.py: `ray start --head --num-cpus 2` with its own temp dir and ports,
stopped at the end) and one scheduler over a `RayExecutor` with one CPU per run, so two runs train
at once. The runs share no disk with the test's store on purpose: each worker records into a
node-local store in a temporary folder and sends every record back over Ray; the test's store is
written only by the executor's pump. The node-local store of a killed worker stays on disk, which
gives the oracle for "no recorded metric is lost".
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
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
from cnnlab.runs.ray import bundle as ray_bundle
from cnnlab.runs.ray import records as ray_records
from cnnlab.store.diagnoses import PLATEAU, Diagnosis
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.trained import exports
from tests.ports import free_port

if TYPE_CHECKING:
    from cnnlab.runs.ray.executor import RayExecutor

require_ray()  # Skips the module where Ray is not installed (never in CI).
pytestmark = pytest.mark.slow

SPEC = specs.ModelSpec.from_dict(
    {
        "name": "tiny digits",
        "input_shape": [8, 8, 1],
        "layers": [
            {"type": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu"},
            {"type": "Flatten"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    }
)
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
    wait_until(lambda: _batches(store, run_id) >= 3, "batch metrics of the Ray run in the server's store")
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
    store: Store, executor: RayExecutor, long_runs: dict[str, str]
) -> None:
    run_id = long_runs["killed"]
    wait_until(lambda: len(store.epoch_metrics(run_id)) >= 1, "a whole epoch of the run to be recorded")
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
    # The oracle: everything the worker recorded on its node before it died is in the server's store.
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


def test_a_run_bundle_carries_the_rows_and_files_a_continue_needs(store: Store, tmp_path: Path) -> None:
    source = store.create_run(
        RunRequest(
            spec=SPEC, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings(epochs=2)
        )
    )
    store.add_epoch_metrics(source.id, {"epoch": 1, "loss": 0.5, "val_accuracy": 0.75})
    store.save_checkpoint(source.id, "latest", 1, lambda path: path.write_bytes(b"model bytes"))
    store.write_snapshot(source.id, 0, "probes", {"images": np.ones((2, 8, 8, 1), np.float32)})
    bundle = ray_bundle.pack_run(store, source.id)
    ray_bundle.unpack_run(bundle, tmp_path / "node", Path("/data/on/the/node"))
    node = Store(tmp_path / "node")
    copy = node.get_run(source.id)
    assert copy.name == source.name and copy.training() == source.training()
    assert copy.data().dataset == "/data/on/the/node"
    assert node.epoch_metrics(source.id)["val_accuracy"].tolist() == [0.75]
    assert node.checkpoints(source.id) == {"latest": 1}
    assert node.checkpoint_path(source.id, "latest").read_bytes() == b"model bytes"
    assert node.read_snapshot(source.id, 0, "probes")["images"].shape == (2, 8, 8, 1)


def test_a_file_a_worker_sends_lands_in_its_run_folder_and_never_outside(store: Store) -> None:
    run = store.create_run(
        RunRequest(spec=SPEC, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings())
    )
    assert ray_records.apply_record(store, (run.id, "run_file", ("tensorboard/train/events.x", b"logs")))
    assert (exports.tensorboard_folder(store, run.id) / "train" / "events.x").read_bytes() == b"logs"
    assert not ray_records.apply_record(store, (run.id, "run_file", ("../../escaped", b"no")))
    assert (
        not (store.home / "escaped").exists() and not (store.run_folder(run.id).parent / "escaped").exists()
    )


def test_a_diagnosis_record_from_a_node_becomes_a_row_on_the_server(store: Store) -> None:
    run = store.create_run(
        RunRequest(
            spec=SPEC, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings(epochs=2)
        )
    )
    finding = Diagnosis(PLATEAU, 2, "The loss stopped falling.", "Raise the rate.")
    assert ray_records.apply_record(store, (run.id, "diagnosis", (finding,)))
    assert store.diagnoses(run.id) == [finding]
    assert store.events(run.id)["message"].iloc[-1] == finding.message()
    # A record for a run deleted meanwhile is skipped, as a local worker's write would fail.
    assert not ray_records.apply_record(store, ("gone", "diagnosis", (finding,)))


def test_a_node_dropping_an_epochs_weights_keeps_those_a_fork_on_the_server_starts_from(store: Store) -> None:
    run = store.create_run(
        RunRequest(spec=SPEC, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings())
    )
    for epoch in (3, 5):
        store.save_checkpoint(run.id, epoch, epoch, lambda path: np.savez(path, weights=np.zeros(2)))
    store.set_status(run.id, Status.STOPPED)
    Scheduler(store, LocalProcessExecutor(store.home, warm=False), max_workers=1).fork(run.id, 3)
    for epoch in (3, 5):
        assert ray_records.apply_record(store, (run.id, "delete_epoch_weights", (epoch,)))
    assert store.checkpoints(run.id) == {"epoch_0003": 3}
    assert store.checkpoint_path(run.id, 3).is_file() and not store.checkpoint_path(run.id, 5).exists()


def test_a_folder_of_images_is_packed_once_and_unpacked_once_per_node(tmp_path: Path) -> None:
    folder = tmp_path / "pets"
    for label in ("cats", "dogs"):
        (folder / label).mkdir(parents=True)
        for index in range(3):
            (folder / label / f"{index}.png").write_bytes(bytes([index]) * (10 + index))
    source = ray_bundle.dataset_source(str(folder))
    assert source == folder.resolve() and ray_bundle.dataset_source("digits") is None
    key = ray_bundle.dataset_key(folder)
    assert ray_bundle.dataset_key(folder) == key  # Stable while the files stay.
    payload = ray_bundle.pack_dataset(folder)
    first = ray_bundle.materialise_dataset(payload, tmp_path / "node_cache")
    second = ray_bundle.materialise_dataset(payload, tmp_path / "node_cache")
    assert first == second and first.name == "pets"
    assert sorted(path.relative_to(first).as_posix() for path in first.rglob("*.png")) == sorted(
        path.relative_to(folder).as_posix() for path in folder.rglob("*.png")
    )
    assert (first / "dogs" / "2.png").read_bytes() == bytes([2]) * 12
    (folder / "dogs" / "3.png").write_bytes(b"new image")
    assert ray_bundle.dataset_key(folder) != key  # A changed upload is shipped again.


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


def test_a_head_nodes_ports_are_all_different_and_clear_of_the_workers_range() -> None:
    """Ray refuses a start where two components share a port, the workers' range included (a CI run
    failed when the dashboard port fell inside the workers' range)."""
    from ray_cluster import SINGLE_PORT_FLAGS, WORKER_PORTS, ComponentPorts

    for _ in range(50):
        head = free_port()
        ports = ComponentPorts.choose(keep={head})
        single = [head, *ports.single.values()]
        assert len(set(single)) == len(single) == len(SINGLE_PORT_FLAGS) + 1
        workers = range(ports.workers_from, ports.workers_from + WORKER_PORTS)
        assert not set(single) & set(workers)
        assert workers.stop <= 65536

"""The Ray executor's parts that need no cluster: a run's channel, placement messages, bundles and records.

`RunChannel` is exercised with real threads (a job sending, a server taking and acknowledging), the
way `RunActor` uses it on a node; bundles, datasets and records go through a real store.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from cnnlab import specs
from cnnlab.errors import RunError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.runs.ray import bundle as ray_bundle
from cnnlab.runs.ray import channel as ray_channel
from cnnlab.runs.ray import placement
from cnnlab.runs.ray import records as ray_records
from cnnlab.store.diagnoses import PLATEAU, Diagnosis
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.trained import exports
from tests.made_runs import TINY_DIGITS_SPEC as SPEC
from tests.ports import free_port


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "server")


def test_a_channel_hands_over_records_in_order_and_forgets_them_once_acknowledged() -> None:
    channel = ray_channel.RunChannel("run-1")
    for step in range(3):
        channel.send("batch_metrics", ({"step": step},))
    first, records, closed = channel.take(0, timeout=0)
    assert first == 0 and [arguments[0]["step"] for _, _, arguments in records] == [0, 1, 2] and not closed
    channel.send("event", ("hello", "info"))
    first, records, closed = channel.take(3, timeout=0)  # Acknowledges the first three.
    assert first == 3 and [kind for _, kind, _ in records] == ["event"]
    # A restarted server, which does not know what was applied, gets everything not acknowledged.
    assert channel.take(None, timeout=0)[:2] == (3, records)
    channel.close()
    assert channel.take(4, timeout=0) == (4, [], True) and channel.drained


def _apply(store: Store, channel: ray_channel.RunChannel, acknowledged: int) -> tuple[int, list[str]]:
    """What a server does once: take what waits (acknowledging below `acknowledged`) and apply it, in order."""
    first, records, _ = channel.take(acknowledged, timeout=0)
    for record in records:
        assert ray_records.apply_record(store, record)
    return first + len(records), [kind for _, kind, _ in records]


def test_a_job_waits_for_the_server_only_to_keep_it_one_epoch_behind(store: Store) -> None:
    """Nothing waits for the server but an epoch, which waits until the server has the epoch before it."""
    run = store.create_run(
        RunRequest(spec=SPEC, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings())
    )
    store.set_status(run.id, Status.STARTING)  # As the scheduler hands it to an actor.
    channel = ray_channel.RunChannel(run.id)
    node = ray_channel.RecordingStore(store.home.parent / "node", run.id, channel)
    node.import_run_rows(store.export_run_rows(run.id))
    # No server takes anything yet: a status, a batch, a whole epoch with a snapshot and a checkpoint, and
    # results all return (each used to wait for the server).
    node.set_status(run.id, Status.RUNNING)
    node.add_batch_metrics(run.id, [{"epoch": 1, "batch": 1, "step": 0, "loss": 1.0}])
    node.add_epoch_metrics(run.id, {"epoch": 1, "loss": 0.5})
    node.write_snapshot(run.id, 1, "kernels", {"conv": np.ones((3, 3))})
    node.save_checkpoint(run.id, "latest", 1, lambda path: path.write_bytes(b"weights of epoch 1"))
    node.set_results(run.id, {"val_accuracy": 0.5})
    assert channel.sent == 6 and store.get_run(run.id).status == Status.STARTING  # None applied yet.
    # The second epoch waits until the server holds the first and everything sent before it.
    second = threading.Thread(target=node.add_epoch_metrics, args=(run.id, {"epoch": 2, "loss": 0.4}))
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive() and node.epoch_metrics(run.id)["epoch"].tolist() == [1]
    acknowledged, kinds = _apply(store, channel, 0)
    assert kinds == ["status", "batch_metrics", "epoch_metrics", "snapshot", "checkpoint", "results"]
    assert store.get_run(run.id).status == Status.RUNNING
    assert store.checkpoint_path(run.id, "latest").read_bytes() == b"weights of epoch 1"
    acknowledged, later = _apply(store, channel, acknowledged)  # Acknowledges them: the second epoch goes on.
    second.join(timeout=30)
    assert not second.is_alive()
    later += _apply(store, channel, acknowledged)[1]
    assert later == ["epoch_metrics"] and store.epoch_metrics(run.id)["epoch"].tolist() == [1, 2]


def test_a_flush_gives_up_when_no_server_takes_the_records() -> None:
    channel = ray_channel.RunChannel("run-1")
    channel.send("heartbeat", ())
    assert not channel.flush(timeout=0.05)  # The record stays for a server that comes back.
    assert channel.take(None, timeout=0)[1] == [("run-1", "heartbeat", ())]


def test_control_requests_reach_the_job_through_the_channel(tmp_path: Path) -> None:
    channel = ray_channel.RunChannel("run-1")
    node = ray_channel.RecordingStore(tmp_path, "run-1", channel)
    assert node.pending_control("run-1") is None
    channel.set_control("pause")
    assert node.pending_control("run-1") == "pause"
    channel.clear_control("resume")  # Answers only the request it names.
    assert node.pending_control("run-1") == "pause"


NODE = {"Alive": True, "Resources": {"CPU": 1.0, "memory": 1e9}}


def test_a_run_no_node_can_hold_is_refused_with_the_size_of_the_largest() -> None:
    nodes = [NODE, {**NODE, "Resources": {"CPU": 2.0}}, {"Alive": False, "Resources": {"CPU": 8.0}}]
    assert placement.never_placeable(nodes, cpus=2, gpus=0) is None
    assert placement.never_placeable(nodes, cpus=4, gpus=0) == (
        "No Ray node has 4 CPUs for this run; the largest has 2. Lower CNNLAB_RAY_CPUS_PER_RUN to 2 or less, "
        "or add a node with more CPUs to the cluster."
    )
    refusal = placement.never_placeable(nodes, cpus=1, gpus=1)
    assert (
        refusal is not None
        and refusal.startswith("No Ray node has 1 GPUs")
        and "CNNLAB_GPUS_PER_RUN=0" in refusal
    )
    assert "no living node" in str(placement.never_placeable([], cpus=1, gpus=0))


def test_a_run_that_waited_too_long_says_what_it_waited_for() -> None:
    assert placement.not_placed(60.2, 1, total_cpus=2, free_cpus=0).startswith(
        "No Ray node freed 1 CPUs for this run within 60 s (the cluster has 2 CPUs, 0 free"
    )
    assert "did not start within 60 s" in placement.not_placed(60.2, 1, total_cpus=2, free_cpus=2)


def test_the_placement_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(placement.CPUS_VARIABLE, raising=False)
    assert placement.cpus_per_run() == 1.0  # One CPU, whatever the server's own cores.
    monkeypatch.setenv(placement.CPUS_VARIABLE, "0.5")
    assert placement.cpus_per_run() == 0.5
    monkeypatch.setenv(placement.PLACEMENT_VARIABLE, "soon")
    with pytest.raises(
        RunError, match="CNNLAB_RAY_PLACEMENT_SECONDS must be a positive number of seconds; got 'soon'"
    ):
        placement.placement_seconds()


def test_a_node_stopping_is_told_apart_from_a_worker_dying() -> None:
    assert ray_records.node_stopped_reason(
        "process 7 on box, ", "The actor died because its node has died."
    ) == ("The Ray node running it stopped: process 7 on box, The actor died because its node has died.")
    assert (
        ray_records.died_reason("", "killed by SIGKILL")
        == "The Ray worker running it died (its process was killed)."
    )


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

"""The device a run trains on: the choice from the GPUs TensorFlow lists (fabricated lists here, as
plain data), the settings read from the environment, the GPUs a run asks a cluster for, and a real
run on this CPU machine recording "CPU (N threads)"."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from cnnlab import specs
from cnnlab.errors import RunError
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import capacity
from cnnlab.runs.worker import devices
from cnnlab.runs.worker.devices import DeviceChoice, Gpu
from cnnlab.store import records
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.app_pages import open_page

TWO_GPUS = [Gpu(0, "NVIDIA T4"), Gpu(1, "NVIDIA A100")]


def test_without_a_gpu_every_worker_trains_on_the_cpu() -> None:
    for slot in range(3):
        choice = devices.choose_device([], slot, threads=2)
        assert choice == DeviceChoice(gpu=None, threads=2)
        assert choice.label == "CPU (2 threads)"
    assert devices.choose_device([], 0, threads=1).label == "CPU (1 thread)"


def test_each_worker_gets_a_gpu_of_its_own_then_they_share_round_robin() -> None:
    chosen = [devices.choose_device(TWO_GPUS, slot, threads=1).gpu for slot in range(4)]
    assert chosen == [TWO_GPUS[0], TWO_GPUS[1], TWO_GPUS[0], TWO_GPUS[1]]
    only = devices.choose_device(TWO_GPUS[:1], 0, threads=1)
    assert only.memory_limit_mb is None
    assert only.label == "GPU 0: NVIDIA T4 (memory growth)"


def test_a_memory_limit_lets_several_runs_share_one_gpu() -> None:
    shared = [devices.choose_device(TWO_GPUS[:1], slot, threads=1, memory_limit_mb=2048) for slot in range(3)]
    assert {choice.gpu for choice in shared} == {TWO_GPUS[0]}
    assert all(choice.memory_limit_mb == 2048 for choice in shared)
    assert shared[2].label == "GPU 0: NVIDIA T4 (2048 MB limit)"


def test_the_preference_picks_the_cpu_or_insists_on_a_gpu() -> None:
    assert devices.choose_device(TWO_GPUS, 1, threads=2, preference="cpu").gpu is None
    assert devices.choose_device(TWO_GPUS, 1, threads=2, preference="gpu").gpu == TWO_GPUS[1]
    with pytest.raises(RunError, match=r"CNNLAB_DEVICE=gpu but TensorFlow sees no GPU.*\[gpu\]"):
        devices.choose_device([], 0, threads=2, preference="gpu")
    with pytest.raises(RunError, match="one of auto, cpu, gpu; got 'tpu'"):
        devices.choose_device(TWO_GPUS, 0, threads=2, preference="tpu")
    with pytest.raises(RunError, match="got -1"):
        devices.choose_device(TWO_GPUS, -1, threads=2)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", {"CNNLAB_DEVICE": " CPU ", "CNNLAB_GPU_MEMORY_MB": "4096"})
    assert devices.preference_from_environment() == "cpu"
    assert devices.memory_limit_from_environment() == 4096
    devices.configure_environment()
    # The CPU hides the GPUs before TensorFlow starts; a memory limit leaves TensorFlow's growth alone.
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "-1"
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in os.environ
    monkeypatch.setattr(os, "environ", {})
    assert devices.preference_from_environment() == "auto"
    devices.configure_environment()
    assert os.environ == {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    monkeypatch.setattr(os, "environ", {"CNNLAB_GPU_MEMORY_MB": "lots"})
    with pytest.raises(RunError, match="whole number of megabytes of at least 1; got 'lots'"):
        devices.memory_limit_from_environment()


def test_a_worker_takes_the_first_slot_no_other_process_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(devices.SLOT_VARIABLE, raising=False)
    monkeypatch.setattr(devices, "_held_slot", None)
    tmp_path.joinpath("slot-0.lock").touch()
    with open(tmp_path / "slot-0.lock") as other_worker:
        fcntl.flock(other_worker, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert devices.claim_slot(tmp_path, 3) == 1
    monkeypatch.setenv(devices.SLOT_VARIABLE, "5")
    assert devices.claim_slot(tmp_path, 3) == 5


def test_the_gpus_a_run_asks_a_cluster_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(capacity.GPUS_PER_RUN_VARIABLE, raising=False)
    assert capacity.gpus_per_run(build="cpu", gpu_count=2) == 0.0
    assert capacity.gpus_per_run(build="cuda", gpu_count=0) == 0.0
    assert capacity.gpus_per_run(build="cuda", gpu_count=1) == 1.0
    # This machine has the CPU build and no GPU.
    assert capacity.tensorflow_build() == "cpu"
    assert capacity.gpus_per_run() == 0.0
    monkeypatch.setenv(capacity.GPUS_PER_RUN_VARIABLE, "0.5")
    assert capacity.gpus_per_run(build="cpu", gpu_count=0) == 0.5
    monkeypatch.setenv(capacity.GPUS_PER_RUN_VARIABLE, "2")
    assert capacity.gpus_per_run() == 2.0
    for wrong in ("1.5", "-1", "one"):
        monkeypatch.setenv(capacity.GPUS_PER_RUN_VARIABLE, wrong)
        with pytest.raises(RunError, match=f"got '{wrong}'"):
            capacity.gpus_per_run()


def test_a_worker_here_sets_up_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # TensorFlow on this machine lists no GPU: the real setup chooses the CPU and claims no slot.
    monkeypatch.setattr(devices, "_chosen", None)
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")
    monkeypatch.delenv(devices.DEVICE_VARIABLE, raising=False)
    monkeypatch.delenv(devices.MEMORY_VARIABLE, raising=False)
    assert devices.chosen_device() is None
    choice = devices.apply_tensorflow_device(tmp_path / "workers")
    assert choice == DeviceChoice(gpu=None, threads=2)
    assert devices.chosen_device() == choice and devices.describe_device() == "CPU (2 threads)"
    assert not (tmp_path / "workers").exists()


def test_a_run_records_its_device_for_the_pages() -> None:
    assert records.recorded_device({"device": "CPU (2 threads)", "epochs": 1}) == "CPU (2 threads)"
    assert records.recorded_device({"epochs": 1}) is None
    assert records.recorded_device(None) is None


def test_a_real_run_on_this_machine_records_the_cpu(trained_home: tuple[Path, str]) -> None:
    # The shared run trained through the real job; a worker process's own record is checked in
    # tests/test_training.py (the real worker that is killed after its first epoch).
    home, run_id = trained_home
    finished = Store(home).get_run(run_id)
    assert records.recorded_device(finished.results) == devices.describe_device()
    assert finished.results["device"].startswith("CPU (")
    assert finished.result("device") is None and finished.result("test_accuracy") is not None


def test_the_train_and_runs_pages_show_the_device(home_store: Store) -> None:
    run = home_store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(epochs=3),
            name="gpu run",
        )
    )
    home_store.set_status(run.id, Status.STARTING)
    home_store.set_status(run.id, Status.RUNNING)
    home_store.set_results(run.id, {"device": "GPU 0: NVIDIA T4 (memory growth)"})
    train = open_page("train", run.id, 60).run()
    assert not train.exception, train.exception
    captions = [str(caption.value) for caption in train.caption]
    assert "Training on GPU 0: NVIDIA T4 (memory growth)" in captions
    runs = open_page("runs", timeout=60).run()
    assert not runs.exception, runs.exception
    (table,) = [frame.value for frame in runs.dataframe if "device" in frame.value.columns]
    assert table.set_index("id").loc[run.id, "device"] == "GPU 0: NVIDIA T4 (memory growth)"

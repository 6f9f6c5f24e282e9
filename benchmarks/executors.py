"""The same sweep of 8 short digits runs through the local executor and through Ray, on this machine.

Both executors get the same scheduler settings: two runs at once (one TensorFlow thread each), a
warm worker waiting and a worker that ends a run taking the next one. Ray runs on a throwaway
local cluster (`ray start --head --num-cpus 2`, its own temp dir and ports; started before the
clock runs, as a real cluster is). For each executor it measures:

- total wall time from the first submit until all 8 runs have ended;
- first-metric latency: submit to the run's first batch metric in the server's store (median);
- per-run training time (the store's started_at to ended_at, median);
- delivery delay: a batch metric's write time on the worker to its arrival in the server's
  store, as the test polls it every 10 ms (median; the local worker writes the store directly,
  a Ray worker keeps it in its run's channel until the executor's pump takes it);
- per-run overhead of Ray's transport: (Ray's total - local total) / 8, and the records and bytes
  shipped per run.

Then the arithmetic for a class of 30 students, each starting one such run: runs per hour and the
wait for the last one on one 2-core server against a cluster of N such machines.

    python benchmarks/executors.py [--runs 8] [--epochs 3] [--ray-first]

Prints figures; never fails on a timing.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import first_metric_latency

from cnnlab import specs
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.executor import Executor, LocalProcessExecutor
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.store.run_store import Store

SPEC = specs.ModelSpec.from_dict(
    {
        "name": "sweep digits",
        "input_shape": [8, 8, 1],
        "layers": [
            {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
            {"type": "Flatten"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    }
)
# The worker's own event, one a run on either executor. A Ray worker also logs "Ray worker process N on HOST
# took the run": counting both counted each Ray worker twice.
WORKER_EVENT = re.compile(r"worker process (\d+) took the run")
SLOTS = 2  # runs at once on one 2-core machine, one TensorFlow thread each
CLASS_SIZE = 30


def sweep_settings(runs: int, epochs: int) -> list[specs.TrainingSettings]:
    """A grid of learning rates and batch sizes, `runs` long."""
    grid = [(rate, batch) for batch in (32, 64) for rate in (1e-3, 3e-3, 1e-2, 3e-2)]
    return [
        specs.TrainingSettings(epochs=epochs, learning_rate=rate, batch_size=batch)
        for rate, batch in (grid * math.ceil(runs / len(grid)))[:runs]
    ]


def run_sweep(executor: Executor, store: Store, runs: int, epochs: int) -> dict[str, float]:
    """Submit the sweep, follow it as a page would (polling every 10 ms), return its figures."""
    scheduler = Scheduler(store, executor, max_workers=SLOTS, poll_seconds=0.1).start()
    wait_for_warm(executor)
    submitted: dict[str, float] = {}
    first_metric: dict[str, float] = {}
    delays: list[float] = []
    seen: dict[str, int] = {}
    started = time.monotonic()
    for settings in sweep_settings(runs, epochs):
        run = scheduler.submit(
            RunRequest(
                spec=SPEC, data_settings=specs.DataSettings(), training_settings=settings, sweep="executors"
            )
        )
        submitted[run.id] = time.monotonic()
    while True:
        ended = 0
        for run_id in submitted:
            record = store.get_run(run_id)
            ended += record.is_ended
            rows = store.batch_metrics(run_id, after_step=seen.get(run_id, -1))
            if len(rows):
                now_wall = time.time()
                first_metric.setdefault(run_id, time.monotonic() - submitted[run_id])
                delays += [now_wall - float(written) for written in rows["time"]]
                seen[run_id] = int(rows["step"].max())
        if ended == len(submitted):
            break
        time.sleep(0.01)
    total = time.monotonic() - started
    scheduler.shutdown()
    records = [store.get_run(run_id) for run_id in submitted]
    failed = [record.id for record in records if record.status != "completed"]
    if failed:
        print(f"  warning: runs {failed} did not complete: {[store.get_run(i).reason for i in failed]}")
    durations = [
        record.ended_at - record.started_at for record in records if record.ended_at and record.started_at
    ]
    workers = {
        found.group(1)
        for record in records
        for message in store.events(record.id)["message"]
        if (found := WORKER_EVENT.match(message))
    }
    return {
        "workers": len(workers),
        "total": total,
        "first_metric_median": statistics.median(first_metric.values()),
        "first_metric_first": first_metric[next(iter(submitted))],
        "run_median": statistics.median(durations),
        "delay_median": statistics.median(delays),
        "delay_p95": sorted(delays)[int(0.95 * (len(delays) - 1))],
        "batch_rows": len(delays) / len(submitted),
    }


def wait_for_warm(executor: Executor) -> None:
    """Let the warm worker finish importing TensorFlow before the clock runs (both executors alike)."""
    if isinstance(executor, LocalProcessExecutor):
        first_metric_latency.wait_until_idle(executor)
        return
    from cnnlab.runs.ray.executor import RayExecutor

    if isinstance(executor, RayExecutor):
        executor.wait_until_warm()


def transport_volume(store: Store) -> tuple[int, int]:
    """Files (snapshots and checkpoints) bytes in the server store: what a Ray worker sends besides rows."""
    total_bytes = sum(path.stat().st_size for path in (store.home / "runs").rglob("*") if path.is_file())
    files = sum(1 for path in (store.home / "runs").rglob("*") if path.is_file())
    return files, total_bytes


def class_estimate(local: dict[str, float], ray_figures: dict[str, float], runs: int) -> None:
    """Runs per hour and the wait for the last of 30 runs, on one server and on N machines."""
    local_per_run = local["total"] / runs  # wall seconds per run with SLOTS at once on one machine
    overhead = (ray_figures["total"] - local["total"]) / runs
    ray_per_run = local_per_run + max(overhead, 0.0)
    print("\nA class of 30, each student starting one such run at the same moment:")
    print(f"  one 2-core server: {local_per_run:.2f} s of machine time per run ({SLOTS} at once)")
    print(f"  Ray: + {overhead:.2f} s per run for its transport and actors = {ray_per_run:.2f} s per run")
    print(f"  {'machines':>8} {'runs/hour':>10} {'last of 30 ends after':>22}")
    print(f"  {'1 local':>8} {3600 / local_per_run:>10.0f} {CLASS_SIZE * local_per_run:>20.0f} s")
    for machines in (1, 2, 4, 8, 15):
        per_hour = machines * 3600 / ray_per_run
        rounds = math.ceil(CLASS_SIZE / (SLOTS * machines))
        last = rounds * SLOTS * ray_per_run + ray_figures["first_metric_first"]
        print(f"  {machines:>8} {per_hour:>10.0f} {last:>20.0f} s")
    print(
        "  (runs/hour = machines x 3600 / seconds per run; the last run ends after ceil(30 / (2 x machines))"
        " rounds of two runs, plus the first run's start-up)"
    )


def local_half(folder: Path, runs: int, epochs: int) -> tuple[dict[str, float], tuple[int, int]]:
    """The sweep through local worker processes: its figures and the files its runs wrote."""
    store = Store(folder / "local")
    local_executor = LocalProcessExecutor(store.home, threads=1, warm=True, reuse=True)
    found = run_sweep(local_executor, store, runs, epochs)
    return found, transport_volume(store)


def ray_half(folder: Path, runs: int, epochs: int) -> tuple[dict[str, float], tuple[int, int]]:
    """The sweep through Ray on a throwaway local cluster: its figures and the files its runs sent back."""
    from tests.ray_cluster import LocalRayCluster

    cluster_started = time.monotonic()
    with LocalRayCluster(num_cpus=SLOTS) as cluster:
        os.environ.update(cluster.client_environment)  # Before Ray is imported here.
        from cnnlab.runs.ray.executor import RayExecutor

        print(f"ray start --head: {time.monotonic() - cluster_started:.1f} s (not counted)")
        store = Store(folder / "ray")
        connect_started = time.monotonic()
        ray_executor = RayExecutor(store, address=cluster.address, threads=1, warm=True, reuse=True)
        print(f"connecting the server to it: {time.monotonic() - connect_started:.1f} s (not counted)")
        found = run_sweep(ray_executor, store, runs, epochs)
        volume = transport_volume(store)
        ray_executor.shutdown()
        import ray

        ray.shutdown()
    return found, volume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--ray-first",
        action="store_true",
        help="run the Ray half first (on a machine whose load drifts, the second half pays for it)",
    )
    arguments = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    figures: dict[str, dict[str, float]] = {}
    files: dict[str, tuple[int, int]] = {}
    halves = {"local": local_half, "ray": ray_half}
    with tempfile.TemporaryDirectory() as folder:
        for name in ("ray", "local") if arguments.ray_first else ("local", "ray"):
            figures[name], files[name] = halves[name](Path(folder), arguments.runs, arguments.epochs)
            print(f"load average after the {name} half: {os.getloadavg()[0]:.1f}")
    local_files, ray_files = files["local"], files["ray"]
    print(f"load average after: {os.getloadavg()[0]:.1f}\n")
    rows = [
        ("total wall time (s)", "total"),
        ("first metric, median (s)", "first_metric_median"),
        ("first metric, first run (s)", "first_metric_first"),
        ("training time per run, median (s)", "run_median"),
        ("batch metric delivery, median (s)", "delay_median"),
        ("batch metric delivery, 95th pct (s)", "delay_p95"),
        ("batch rows per run", "batch_rows"),
        ("worker processes that trained the runs", "workers"),
    ]
    print(f"{arguments.runs} digits runs, {arguments.epochs} epochs each, {SLOTS} at once")
    print(f"{'':38} {'local':>9} {'ray':>9} {'ray/local':>10}")
    for label, key in rows:
        local, remote = figures["local"][key], figures["ray"][key]
        ratio = remote / local if local else float("nan")
        print(f"{label:38} {local:>9.3f} {remote:>9.3f} {ratio:>10.2f}")
    overhead = (figures["ray"]["total"] - figures["local"]["total"]) / arguments.runs
    print(f"\nper-run overhead of Ray (difference in total wall time / {arguments.runs}): {overhead:.2f} s")
    print(
        f"files each run sends back (snapshots, checkpoints): {ray_files[0] / arguments.runs:.0f} files, "
        f"{ray_files[1] / arguments.runs / 1024:.0f} KiB (local store: {local_files[1] / arguments.runs / 1024:.0f} KiB)"
    )
    class_estimate(figures["local"], figures["ray"], arguments.runs)


if __name__ == "__main__":
    main()

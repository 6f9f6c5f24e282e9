"""A throwaway local Ray cluster with its own temporary folder and ports, for tests and benchmarks.

`LocalRayCluster` runs `ray start --head --num-cpus N` with a fresh `--temp-dir` and free ports
(so it never meets another Ray on the machine), gives its `address` for `RAY_ADDRESS`, and
`ray stop`s it (only its own processes, found through its temp dir) when it closes. A real
cluster is started the same way by hand: `ray start --head` on one machine and
`ray start --address HEAD:PORT` on the others.

Its workers run at the niceness of CNN Lab's local workers (`RAY_worker_niceness`, Ray's own setting,
is 15 by default): on a machine shared with other work, Ray actors 5 steps nicer than local workers got
less than half their share of a contended CPU, which the executors benchmark measured as Ray's cost.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil

import cnnlab
from cnnlab.runs.worker import threads
from tests.ports import free_port

# Ray turns 127.0.0.1 in an address into the machine's network address unless multi-node clusters are
# off; with this, a one-machine cluster and its clients talk over the loopback interface only.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


# `ray start --address HEAD` for a second node of a loopback-only cluster. Under `LOOPBACK_ONLY` Ray refuses a
# second node; allowed multi-node clusters, it replaces 127.0.0.1 in the head's address with the machine's
# network address, where the head does not listen. So the second node runs Ray's own command with both
# checks turned off: it joins the head over the loopback, as a node on another machine joins over the network.
JOIN_OVER_LOOPBACK = (
    "import sys, ray._private.services as services, ray._private.ray_constants as constants; "
    "constants.ENABLE_RAY_CLUSTER = True; services.resolve_ip_for_localhost = lambda host: host; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"
)

# How often `ray start` is tried with fresh ports before its error is raised.
START_ATTEMPTS = 3

# The size of the port range Ray's worker processes bind in (one port per worker; 2-CPU clusters here
# start a handful).
WORKER_PORTS = 200

# The single ports `ray start --head` opens besides the head's own (`--dashboard-port` too: Ray checks it
# against the others even with the dashboard off).
SINGLE_PORT_FLAGS = (
    "node-manager-port",
    "object-manager-port",
    "ray-client-server-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
    "dashboard-port",
)


@dataclass(frozen=True)
class ComponentPorts:
    """Ports for a head node's components: all different, none inside the workers' range.

    Ray refuses to start when two of its components share a port, and the workers' range counts.
    """

    single: dict[str, int]
    workers_from: int

    @classmethod
    def choose(cls, keep: set[int]) -> ComponentPorts:
        """Free ports for every flag of `SINGLE_PORT_FLAGS` and a worker range clear of them and `keep`."""
        taken = set(keep)
        single: dict[str, int] = {}
        for flag in SINGLE_PORT_FLAGS:
            port = free_port()
            while port in taken:
                port = free_port()
            single[flag] = port
            taken.add(port)
        workers_from = free_port()
        while any(workers_from <= port < workers_from + WORKER_PORTS for port in taken) or (
            workers_from + WORKER_PORTS > 65536
        ):
            workers_from = free_port()
        return cls(single=single, workers_from=workers_from)


@dataclass(frozen=True)
class WorkerNode:
    """A node added to a `LocalRayCluster`: the folder its processes work in and its raylet's port."""

    folder: Path
    node_manager_port: int

    def raylet(self) -> psutil.Process:
        """The node's raylet process (the node's own manager: when it dies, the node has left the cluster)."""
        flag = f"--node_manager_port={self.node_manager_port}"
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if "raylet" in process.name() and flag in process.cmdline():
                    return process
        raise LookupError(f"No raylet runs with {flag}.")


class HeadHolder:
    """A Ray actor that only holds the CPUs it was given (tests keep runs off the head with it)."""

    def ready(self) -> bool:
        """True once placed."""
        return True


class LocalRayCluster:
    """`with LocalRayCluster(num_cpus=2) as cluster:` a head node at `cluster.address`, stopped on exit.

    A process that connects to it sets `cluster.client_environment` (`RAY_ADDRESS` and
    `LOOPBACK_ONLY`) before it imports Ray.
    """

    def __init__(self, num_cpus: int = 2) -> None:
        self.num_cpus = num_cpus
        # Short: Ray's socket paths must fit in 107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_environment = {"RAY_ADDRESS": self.address, **LOOPBACK_ONLY}

    def _ray(
        self, *arguments: str, environment: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        command = [str(Path(sys.executable).with_name("ray")), *arguments]
        if not Path(command[0]).exists():
            command[0] = shutil.which("ray") or "ray"
        subprocess.run(
            command, check=True, env=environment, capture_output=True, timeout=120, cwd=cwd or self.temp_dir
        )

    def _environment(self) -> dict[str, str]:
        """This interpreter's environment with CNN Lab importable, on the loopback, with no RAY_ADDRESS."""
        environment = dict(os.environ)
        package_root = str(Path(cnnlab.__file__).resolve().parents[1])
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package_root, environment.get("PYTHONPATH")])
        )
        environment.pop("RAY_ADDRESS", None)
        environment.update(LOOPBACK_ONLY)
        # The raylet starts its workers this much nicer than itself, as CNN Lab starts its local workers.
        environment["RAY_worker_niceness"] = str(threads.worker_niceness())
        # A node that stops is found dead after 3 failed health checks 1 s apart, not Ray's 5 checks 3 s
        # apart after a 5 s delay (about 15 s, for a test or a benchmark to wait through); a node that
        # lives answers within the default 10 s timeout, however busy the machine.
        environment["RAY_health_check_initial_delay_ms"] = "1000"
        environment["RAY_health_check_period_ms"] = "1000"
        environment["RAY_health_check_failure_threshold"] = "3"
        return environment

    def start(self) -> LocalRayCluster:
        """Start the head node (about 5-10 s) with this interpreter's `ray` and CNN Lab importable.

        Another program may take one of the chosen ports between the choice and Ray's bind, so a
        refused start is tried again with fresh ports (the head's own port is kept: it is the
        address already given out).
        """
        environment = self._environment()
        for _ in range(START_ATTEMPTS - 1):
            try:
                self._ray(*self._start_arguments(), environment=environment)
                return self
            except subprocess.CalledProcessError:
                self.stop_processes()
        self._ray(*self._start_arguments(), environment=environment)
        return self

    def _start_arguments(self) -> list[str]:
        """`ray start --head` with every port Ray opens chosen apart from each other and the workers'."""
        ports = ComponentPorts.choose(keep={self.port})
        return [
            "start",
            "--head",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            f"--temp-dir={self.temp_dir}",
            f"--port={self.port}",
            "--node-ip-address=127.0.0.1",
            *(f"--{name}={port}" for name, port in ports.single.items()),
            f"--min-worker-port={ports.workers_from}",
            f"--max-worker-port={ports.workers_from + WORKER_PORTS - 1}",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ]

    def add_worker_node(self, num_cpus: int = 1) -> WorkerNode:
        """Start a second node (`ray start --address HEAD`) of `num_cpus` CPUs on this machine, as another
        machine of the cluster would be; its processes work in a folder of the temp dir, so `stop` ends them."""
        folder = Path(tempfile.mkdtemp(prefix="node-", dir=self.temp_dir))
        for attempt in range(START_ATTEMPTS):
            ports = ComponentPorts.choose(keep={self.port})
            arguments = [
                "start",
                f"--address={self.address}",
                f"--num-cpus={num_cpus}",
                "--num-gpus=0",
                "--node-ip-address=127.0.0.1",
                *(
                    f"--{name}={port}"
                    for name, port in ports.single.items()
                    if name not in ("ray-client-server-port", "dashboard-port")
                ),
                f"--min-worker-port={ports.workers_from}",
                f"--max-worker-port={ports.workers_from + WORKER_PORTS - 1}",
                "--disable-usage-stats",
            ]
            try:
                subprocess.run(
                    [sys.executable, "-c", JOIN_OVER_LOOPBACK, *arguments],
                    check=True,
                    env=self._environment(),
                    capture_output=True,
                    timeout=120,
                    cwd=folder,
                )
                return WorkerNode(folder, ports.single["node-manager-port"])
            except subprocess.CalledProcessError:
                if attempt == START_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop this cluster's processes and remove its temporary folder."""
        self.stop_processes()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def stop_processes(self) -> None:
        """Kill every process of this cluster (`ray stop` would end every Ray on the machine).

        Every process of this cluster was started in its temp dir (`ray start` ran there; Ray renames
        some, so the command line does not tell).
        """
        for process_id in self.process_ids():
            with contextlib.suppress(OSError):
                os.kill(process_id, signal.SIGKILL)

    def process_ids(self) -> list[int]:
        """The processes working in this cluster's temp dir (this process excepted)."""
        found = []
        for process in psutil.process_iter():
            if process.pid != os.getpid():
                with contextlib.suppress(psutil.Error, OSError):
                    if Path(process.cwd()).is_relative_to(self.temp_dir):
                        found.append(process.pid)
        return found

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

"""What a run asks a Ray cluster for, and why a run cannot be placed: settings and messages, no Ray calls.

A run asks for `CNNLAB_RAY_CPUS_PER_RUN` CPUs (default 1, whatever the server's own cores: a node of
one CPU must be able to take a run) and, where runs use one, a GPU (`cnnlab.runs.queue.capacity`).
A run no node could ever hold is refused at once, with the sizes of the nodes; a run that waits
longer than `CNNLAB_RAY_PLACEMENT_SECONDS` for a node to free its CPUs ends with what it waited for.
The functions take the node list `ray.nodes()` returns, so they are tested without a cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from cnnlab.errors import RunError

CPUS_VARIABLE = "CNNLAB_RAY_CPUS_PER_RUN"
PLACEMENT_VARIABLE = "CNNLAB_RAY_PLACEMENT_SECONDS"
DEFAULT_CPUS_PER_RUN = 1.0
DEFAULT_PLACEMENT_SECONDS = 60.0

Node = Mapping[str, object]  # one entry of `ray.nodes()`: "Alive", "Resources", "NodeManagerAddress", ...


def _positive(variable: str, default: float, what: str) -> float:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise RunError(
            f"{variable} must be a positive number of {what}; got {text!r}. Unset it for {default:g}."
        )
    return value


def cpus_per_run() -> float:
    """The CPUs one run asks the cluster for: `$CNNLAB_RAY_CPUS_PER_RUN`, else 1."""
    return _positive(CPUS_VARIABLE, DEFAULT_CPUS_PER_RUN, "CPUs")


def placement_seconds() -> float:
    """How long a run may wait for a node to take it: `$CNNLAB_RAY_PLACEMENT_SECONDS`, else 60."""
    return _positive(PLACEMENT_VARIABLE, DEFAULT_PLACEMENT_SECONDS, "seconds")


def _resource(node: Node, name: str) -> float:
    resources = node.get("Resources")
    return float(resources.get(name, 0.0)) if isinstance(resources, Mapping) else 0.0


def never_placeable(nodes: Sequence[Node], cpus: float, gpus: float) -> str | None:
    """Why no living node of the cluster could ever take a run asking `cpus` and `gpus`, or None if one could."""
    alive = [node for node in nodes if node.get("Alive")]
    if not alive:
        return "The Ray cluster has no living node. Start one with `ray start --head` and try again."
    if any(_resource(node, "CPU") >= cpus and _resource(node, "GPU") >= gpus for node in alive):
        return None
    largest_cpus = max(_resource(node, "CPU") for node in alive)
    if largest_cpus < cpus:
        return (
            f"No Ray node has {cpus:g} CPUs for this run; the largest has {largest_cpus:g}. "
            f"Lower {CPUS_VARIABLE} to {largest_cpus:g} or less, or add a node with more CPUs to the cluster."
        )
    largest_gpus = max(_resource(node, "GPU") for node in alive if _resource(node, "CPU") >= cpus)
    return (
        f"No Ray node has {gpus:g} GPUs (with {cpus:g} CPUs) for this run; the largest has {largest_gpus:g}. "
        "Set CNNLAB_GPUS_PER_RUN=0 to train on CPUs, or add a node with a GPU to the cluster."
    )


def not_placed(waited: float, cpus: float, total_cpus: float, free_cpus: float) -> str:
    """The reason of a run that waited `waited` s for a node without getting one."""
    if free_cpus < cpus:
        return (
            f"No Ray node freed {cpus:g} CPUs for this run within {waited:.0f} s "
            f"(the cluster has {total_cpus:g} CPUs, {free_cpus:g} free: other runs or Ray jobs hold them). "
            f"Queue it again when the cluster is quieter, or raise {PLACEMENT_VARIABLE}."
        )
    return (
        f"The Ray worker for this run did not start within {waited:.0f} s, though the cluster has "
        f"{free_cpus:g} of {total_cpus:g} CPUs free. Check the cluster with `ray status` and the node's logs."
    )

"""One local Ray cluster for the test session, for the Ray executor tests.

`ray start --head --num-cpus 2` with its own temp dir and ports (`ray_cluster`), started
by the first test that asks for it and stopped after the last. Skips only where Ray is not installed;
CI installs it (`pip install -e '.[test,ray]'`), and there a missing Ray fails instead.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ray_cluster import LocalRayCluster


def require_ray() -> None:
    """Skip the test where Ray is not installed, except in CI."""
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI"):
            raise RuntimeError("Ray is not installed; CI installs it with `pip install -e '.[test,ray]'`.")
        pytest.skip(
            "Ray is not installed: `pip install -e '.[ray]'` runs the Ray tests.", allow_module_level=True
        )


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalRayCluster]:
    """A local Ray cluster of 2 CPUs for the session; its `address` goes to `RAY_ADDRESS`.

    One per session (starting one takes seconds): the executors of different stores do not meet on
    it, as each store's actors are named after it (`cnnlab.runs.ray.executor.actor_prefix`). A test
    may add a node to it (`LocalRayCluster.add_worker_node`) and stop that node; the head stays.
    """
    require_ray()
    from ray_cluster import LocalRayCluster

    with LocalRayCluster(num_cpus=2) as cluster, pytest.MonkeyPatch.context() as patch:
        # This process (the tests' executors) and the app servers it starts connect over the loopback.
        for name, value in cluster.client_environment.items():
            patch.setenv(name, value)
        yield cluster
        import ray

        if ray.is_initialized():
            ray.shutdown()

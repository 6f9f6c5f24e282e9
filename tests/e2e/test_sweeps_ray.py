"""The sweep browser test again, with the app server training on a local Ray cluster (`CNNLAB_EXECUTOR=ray`).

The app server of this module gets `CNNLAB_EXECUTOR=ray` and the session's cluster as `RAY_ADDRESS`
(tests/ray_fixtures.py), so the sweep's four runs train as Ray actors that send their records back;
the pages are the same, and the test of tests/e2e/test_sweeps.py runs unchanged: live rows, the
parallel-coordinates chart, the best run opened on the Train page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_cluster import LocalRayCluster
from ray_fixtures import require_ray

from cnnlab.store.run_store import Store
from tests.e2e import test_sweeps

require_ray()  # Skips the module where Ray is not installed (never in CI).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def two_workers_on_ray(ray_cluster: LocalRayCluster) -> Iterator[None]:
    """The module's server trains two runs at once on the Ray cluster (it starts after this fixture)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLAB_MAX_WORKERS", "2")
        patch.setenv("CNNLAB_EXECUTOR", "ray")
        for name, value in ray_cluster.client_environment.items():
            patch.setenv(name, value)
        yield


test_a_sweep_of_four_runs_on_a_ray_cluster = (
    test_sweeps.test_a_sweep_of_four_runs_from_the_train_page_to_its_best_run
)


def test_every_run_of_the_sweep_trained_on_the_ray_cluster(app_home: Path) -> None:
    store = Store(app_home)
    runs = [run for run in store.list_runs() if run.sweep is not None]
    assert len(runs) == 4
    for run in runs:
        messages = store.events(run.id)["message"].tolist()
        assert any(message.startswith("Ray worker process") for message in messages), messages
        assert run.worker_pid == 0  # No process of the server's machine trained it.

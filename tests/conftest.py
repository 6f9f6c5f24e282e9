"""Shared test settings: keep TensorFlow quiet and every run's files inside a temporary home."""

import functools
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import subprocess

    from cnnlab.store.run_store import Store

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home with one run really trained on digits for one epoch, shared by the tests that only
    read it (evaluation, Evaluate and Predict pages): (home, run id)."""
    from trained_runs import train_digits_run

    home = tmp_path_factory.mktemp("trained_home")
    return home, train_digits_run(home)


@pytest.fixture(scope="session")
def browser_trained_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home with one digits run really trained for three epochs (a drawn digit and most test images
    are recognised), which browser modules copy into their server's home (`trained_runs.copy_home`)
    instead of each training one: (home, run id)."""
    from trained_runs import train_digits_run

    home = tmp_path_factory.mktemp("browser_trained_home")
    return home, train_digits_run(home, epochs=3, name="digits run, 3 epochs")


@pytest.fixture
def own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of the user's own images in two classes (cats 6, dogs 4 usable) and five files that
    are skipped, one of them over the per-file byte cap (lowered for the test)."""
    from data_files import make_own_folder, save
    from PIL import Image

    from cnnlab.data import folders

    folder = make_own_folder(tmp_path / "pets")
    monkeypatch.setattr(folders, "MAXIMUM_FILE_BYTES", 5_000)
    save(folder / "dogs" / "huge.png", Image.effect_noise((64, 64), 80).convert("RGB"), "PNG")
    return folder


@pytest.fixture
def cnnlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty CNN Lab home in a temporary folder, set as CNNLAB_HOME for the app and the CLI."""
    home = tmp_path / "cnnlab_home"
    home.mkdir()
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    return home


@pytest.fixture
def home_store(cnnlab_home: Path) -> "Store":
    """The run store in `cnnlab_home`: the one the app under test reads and writes."""
    from cnnlab.store.run_store import Store

    return Store(cnnlab_home)


@pytest.fixture(scope="session")
def peaked_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home with one digits run really trained for five epochs at a high learning rate, whose
    validation accuracy peaks before its last epoch (checked by the tests that use it): (home, run id)."""
    from trained_runs import train_digits_run

    from cnnlab import specs

    home = tmp_path_factory.mktemp("peaked_home")
    settings = specs.TrainingSettings(epochs=5, batch_size=64, learning_rate=0.01)
    return home, train_digits_run(home, name="peaked run", settings=settings)


@pytest.fixture(scope="session")
def cli_default_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, "subprocess.CompletedProcess[str]"]:
    """`python -m cnnlab train digits_default --dataset digits` run once, in a worker process, with
    the preset's own settings (40 epochs with augmentation): (its home, the finished command). The
    nightly CLI test reads its output and the nightly real-world images test predicts with its model
    (`python -m pytest -m nightly`), so they pay for this fit once."""
    import subprocess
    import sys

    home = tmp_path_factory.mktemp("cli_home")
    root = Path(__file__).resolve().parents[1]
    environment = {**os.environ, "CNNLAB_HOME": str(home), "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "cnnlab", "train", "digits_default", "--dataset", "digits"]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    return home, completed


def pytest_collection_finish(session: pytest.Session) -> None:
    """Leave what collection imported (TensorFlow, Keras, pandas, every test module) out of later
    garbage collections (`gc.freeze`).

    This process holds TensorFlow, Keras, pandas and every test module: a full collection over that
    heap takes about 0.3 s, and the tests make enough objects to start one now and then. Frozen
    objects are never collected, so it is done once, here, after a collection of what is garbage
    already; what the tests make is collected as before.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def installed_components_scanned_once() -> Iterator[None]:
    """Streamlit's scan of the installed packages for components, done once per test process.

    Every new `AppTest` scans all installed distributions' metadata for Streamlit components (about
    0.15 s here, where TensorFlow, Ray and their dependencies are installed); the packages do not
    change while the tests run, so the first scan's answer is kept. A `streamlit run` server scans
    once as it starts, as before.
    """
    from streamlit.components.v2 import manifest_scanner

    with pytest.MonkeyPatch.context() as patch:
        scan = functools.cache(manifest_scanner.scan_component_manifests)
        patch.setattr(manifest_scanner, "scan_component_manifests", scan)
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a slow or browser test first, in their order, then the rest: the two processes of
    `-n 2` take files in this order, and a long file started last would leave one of them idle."""
    slow_files = {
        item.path for item in items if item.get_closest_marker("slow") or item.get_closest_marker("e2e")
    }
    items.sort(key=lambda item: item.path not in slow_files)


# Fixtures of the Ray tests (a session-wide local Ray cluster), in their own module.
pytest_plugins = ["ray_fixtures"]


@pytest.fixture
def store(home_store: "Store") -> "Store":
    """An empty run store in a temporary home that is also CNNLAB_HOME, so `Store()`, the CLI and the
    worker processes a test starts find the same runs (`home_store`, by the name the core's tests use)."""
    return home_store


@pytest.fixture(scope="module", autouse=True)
def cold_shared_scheduler() -> Iterator[None]:
    """The schedulers this process's pages start (`cnnlab.ui.server.scheduler()` under AppTest) keep
    no warm worker, and are shut down after each module, with the workers of the runs they started.

    A warm worker imports TensorFlow and waits (about 665 MB); one per AppTest module, never stopped,
    made the suite slower for every later test. The warm worker itself is tested in test_executor.py,
    test_scheduler.py and test_start_up.py (the server's own, in a real `streamlit run`).
    """
    from cnnlab.runs.queue import scheduler

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scheduler, "shared", functools.partial(scheduler.shared, warm=False))
        yield
    for started in list(scheduler._shared.values()):
        started.shutdown(kill_workers=True)
    scheduler.shutdown_shared()
    server = sys.modules.get("cnnlab.ui.server")
    if server is not None:
        server._scheduler_at.clear()  # The page cache of the schedulers just shut down.

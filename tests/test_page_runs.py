"""AppTest of the Runs page against a real store: list, rename, delete, download, compare."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.runs.store import Store
from tests.app_pages import open_page
from tests.test_exports import recorded_run


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path))
    return Store(tmp_path)


def runs_page() -> AppTest:
    return open_page("runs").run()


def test_empty_store_points_to_the_train_page(store: Store) -> None:
    app = runs_page()
    assert not app.exception
    assert "No runs yet" in app.info[0].value


def test_one_run_can_be_renamed_and_downloaded(store: Store) -> None:
    run_id = recorded_run(store)
    app = runs_page()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table.columns[:6]) == ["id", "name", "status", "dataset", "model", "parameters"]
    assert table.loc[0, "parameters"] == 151_306
    app.multiselect(key="chosen_runs").select(run_id).run()
    assert app.subheader[0].value == "tiny run"
    labels = [button.label for button in app.get("download_button")]
    assert labels[:3] == ["Model (.keras)", "Training script (.py)", "Metrics (.csv)"]
    app.text_input(key=f"rename_{run_id}").input("renamed run").run()
    app.button(key="rename_run").click().run()
    assert store.get_run(run_id).name == "renamed run"


def test_delete_needs_confirmation(store: Store) -> None:
    run_id = recorded_run(store)
    app = runs_page()
    app.multiselect(key="chosen_runs").select(run_id).run()
    assert store.get_run(run_id)
    app.button(key="confirm_delete").click().run()
    assert store.list_runs() == []
    assert not store.run_folder(run_id).exists()


def test_several_runs_are_compared(store: Store) -> None:
    first, second = recorded_run(store, learning_rate=0.001), recorded_run(store, learning_rate=0.01)
    app = runs_page()
    app.multiselect(key="chosen_runs").select(first).select(second).run()
    assert not app.exception
    assert app.subheader[0].value == "Comparing 2 runs"
    table = app.dataframe[-1].value
    assert "training.learning_rate" in table.index
    assert len(app.get("plotly_chart")) == 2

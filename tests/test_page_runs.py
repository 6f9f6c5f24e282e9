"""AppTest of the Runs page against a real store: list, rename, delete, download, compare."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from streamlit.proto.Block_pb2 import Block as BlockProto
from streamlit.testing.v1 import AppTest

from cnnlab.model import build, presets
from cnnlab.run_request import RunRequest
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.widgets import tables
from tests.app_pages import column_formats, no_problems, open_page
from tests.test_exports import recorded_run


def runs_page(*chosen: str) -> AppTest:
    """The Runs page, run, with the runs `chosen` picked in its multiselect."""
    app = open_page("runs").run()
    no_problems(app)
    if chosen:
        picker = app.multiselect(key="chosen_runs")
        for run_id in chosen:
            picker.select(run_id)
        picker.run()
        no_problems(app)
    return app


def _popovers_holding(
    node: object, key: str, inside: tuple[BlockProto.Popover, ...] = ()
) -> Iterator[tuple[BlockProto.Popover, ...]]:
    """For each widget `key` under `node`, the popovers it sits in, outermost first."""
    for child in getattr(node, "children", {}).values():
        if getattr(child, "key", None) == key:
            yield inside
        proto = getattr(child, "proto", None)
        popover = (proto.popover,) if getattr(child, "type", None) == "popover" else ()
        yield from _popovers_holding(child, key, inside + popover)


def delete_popover(app: AppTest) -> BlockProto.Popover:
    """The popover that holds the delete confirmation (the test fails if there is none)."""
    places = list(_popovers_holding(app.main, "confirm_delete"))
    assert len(places) == 1, f"expected one confirm_delete button, found {len(places)}"
    assert places[0], "the confirm_delete button is not inside a popover: one click would delete"
    return places[0][-1]


def test_empty_store_points_to_the_train_page(home_store: Store) -> None:
    app = runs_page()
    assert "No runs yet" in app.info[0].value


def test_one_run_can_be_renamed_and_downloaded(home_store: Store) -> None:
    run_id = recorded_run(home_store)
    app = runs_page()
    table = app.dataframe[0].value
    assert list(table.columns[:6]) == ["id", "name", "status", "dataset", "model", "parameters"]
    keras_count = build.build_model(presets.get("digits_default").spec).count_params()
    assert table.loc[0, "parameters"] == keras_count
    assert column_formats(app.dataframe[0])["parameters"] == "localized"  # As every table writes a count.
    assert table.loc[0, "status"] == "completed"
    # Its status column is as wide as the longest status, not sized on the first rows drawn (a live
    # table first drawn with "running" clipped "completed" once its run ended).
    columns = json.loads(app.dataframe[0].proto.columns)
    assert columns["status"]["width"] == tables.STATUS_PIXELS
    app = runs_page(run_id)
    assert app.subheader[0].value == "tiny run"
    labels = [button.label for button in app.get("download_button")]
    assert labels[:3] == ["Model (.keras)", "Training script (.py)", "Metrics (.csv)"]
    app.text_input(key=f"rename_{run_id}").input("renamed run").run()
    app.button(key="rename_run").click().run()
    no_problems(app)
    assert home_store.get_run(run_id).name == "renamed run"
    assert app.dataframe[0].value.loc[0, "name"] == "renamed run"


def test_delete_takes_a_second_click_in_the_delete_popover(home_store: Store) -> None:
    kept, doomed = recorded_run(home_store), recorded_run(home_store)
    app = runs_page(doomed)
    popover = delete_popover(app)
    # The first click only opens this popover (in the browser, without a rerun) ...
    assert (popover.label, popover.open, popover.disabled) == ("Delete", False, False)
    # ... and showing the page, its popover and its reruns deletes nothing.
    app.run()
    assert {run.id for run in home_store.list_runs()} == {kept, doomed}
    assert home_store.run_folder(doomed).exists()
    app.button(key="confirm_delete").click().run()
    no_problems(app)
    assert [run.id for run in home_store.list_runs()] == [kept]
    assert not home_store.run_folder(doomed).exists()
    assert home_store.run_folder(kept).exists()


def test_deleting_the_followed_run_stops_following_it(home_store: Store) -> None:
    kept, doomed = recorded_run(home_store), recorded_run(home_store)
    app = open_page("runs", doomed).run()
    app.multiselect(key="chosen_runs").select(doomed).run()
    app.button(key="confirm_delete").click().run()
    no_problems(app)
    assert "run" not in app.query_params
    app.switch_page("app_pages/train.py")
    app.run()
    no_problems(app)
    assert any("Start a run to watch" in info.value for info in app.info)
    assert [run.id for run in home_store.list_runs()] == [kept]


def test_a_training_run_cannot_be_deleted(home_store: Store) -> None:
    run = home_store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=DataSettings(),
            training_settings=TrainingSettings(),
            name="busy run",
        )
    )
    home_store.set_status(run.id, Status.STARTING)
    home_store.set_status(run.id, Status.RUNNING)
    app = runs_page(run.id)
    assert delete_popover(app).disabled
    assert not app.button(key="runs_stop").disabled


def test_several_runs_are_compared(home_store: Store) -> None:
    first = recorded_run(home_store, learning_rate=0.001)
    second = recorded_run(home_store, learning_rate=0.01)
    app = runs_page(first, second)
    assert app.subheader[0].value == "Comparing 2 runs"
    table = app.dataframe[-1].value
    assert table.loc["training.learning_rate"].tolist() == ["0.001", "0.01"]
    assert "training.epochs" not in table.index  # the same in both: hidden while "Only what differs" is on
    assert len(app.get("plotly_chart")) == 2
    assert not [button for button in app.button if button.key == "confirm_delete"]


def _bytes_in(value: object) -> bool:
    """True when `value` is bytes or holds some (in a list, tuple, set or dict, at any depth)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return True
    if isinstance(value, dict):
        return any(_bytes_in(item) for pair in value.items() for item in pair)
    if isinstance(value, list | tuple | set | frozenset):
        return any(_bytes_in(item) for item in value)
    return False


def test_prepared_exports_keep_no_bytes_in_the_session(
    home_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After "Prepare TFLite and the zip bundle" the downloads are offered, and the session's state
    holds no bytes: the files stay in the server's cache (the conversion itself is tested in
    tests/test_exports.py; a stand-in of the same shape keeps this test cheap)."""
    from cnnlab.trained import exports

    tflite = {"model.tflite": b"\x00" * 4096, "model_quantized.tflite": b"\x01" * 1024}
    monkeypatch.setattr(exports, "tflite_files", lambda store, run: dict(tflite))
    run_id = recorded_run(home_store)
    app = runs_page(run_id)
    app.button(key="prepare_bundle").click().run()
    no_problems(app)
    offered = {button.label for button in app.get("download_button")}
    assert {"Bundle (.zip)", "TFLite model", "TFLite, quantized (8-bit weights)"} <= offered
    state = app.session_state.to_dict()
    assert state.get(f"prepared_exports_{run_id}")  # The page remembers what it prepared...
    assert not [key for key, value in state.items() if _bytes_in(value)]  # ...but not the bytes.

"""AppTest of owned runs through the pages: a student who joined with the class code sees only their
own runs (and shared ones), and a hand-made `?run=` link to another student's run says "not yours"
and shows nothing of it on Train, Evaluate, Predict and Runs.

The student signs in as in the browser, through the join form of the sign-in screen (real
classroom.toml, real session); nothing about the user is patched.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import pytest
from made_runs import make_run
from streamlit.testing.v1 import AppTest

from cnnlab import specs
from cnnlab.classroom import joining
from cnnlab.classroom.access import not_yours
from cnnlab.classroom.settings import load_settings
from cnnlab.classroom.users import Role
from cnnlab.plain_text import as_text
from cnnlab.runs.queue import sweeps, trials
from cnnlab.runs.queue.studies import Search
from cnnlab.runs.views import compare
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.pages.train import live_run
from cnnlab.ui.session import controls
from tests.app_pages import open_page, read_back, stream_elements
from tests.test_page_predict import digit_png
from tests.test_sweep_search import EPOCHS, Queued, learning_rates, template, trained

CLASSROOM = """
class_code = "conv-class-7"
teacher_password = "pool-and-stride"
secret = "0123456789abcdef-the-class-secret"
"""
SPEC = specs.ModelSpec.from_dict(
    {
        "name": "tiny",
        "input_shape": [8, 8, 1],
        "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10}],
    }
)
PIN = "2468"
NOT_YOURS = "is not one you can open: it does not exist, or it is another student"


@pytest.fixture
def classroom(home_store: Store, cnnlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A class with a join code, and its run store."""
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    (cnnlab_home / "classroom.toml").write_text(CLASSROOM, encoding="utf-8")
    return home_store


def _user_id(store: Store, owner: str) -> str:
    """The id of the user "student:NAME" or "teacher:NAME" stands for, who joined with `PIN`."""
    kind, _, name = owner.partition(":")
    settings = load_settings(store.home)
    role, word = (Role.TEACHER, "pool-and-stride") if kind == "teacher" else (Role.STUDENT, "conv-class-7")
    return joining.join(store.people, settings, role, name.capitalize(), word, PIN, time.time()).id


def _run(store: Store, owner: str, name: str, status: Status = Status.COMPLETED) -> RunRecord:
    run = make_run(store, spec=SPEC, epochs=1, owner=_user_id(store, owner), name=name)
    if status != Status.QUEUED:
        store.set_status(run.id, Status.STARTING)
        store.set_status(run.id, Status.RUNNING)
        store.set_status(run.id, status)
    return store.get_run(run.id)


def signed_in(page: str, name: str, run_id: str | None = None) -> AppTest:
    """Page `page` for a student `name` who joined with the class code, following `run_id` if given."""
    app = open_page(page).run()
    app.text_input(key="sign_in_name").input(name)
    app.text_input(key="sign_in_class_code").input("conv-class-7")
    app.text_input(key="sign_in_pin").input(PIN)
    app.button(key="sign_in_join").click().run()
    assert not app.exception, app.exception
    if run_id is not None:
        app.query_params["run"] = run_id
        app.run()
    assert not app.exception, app.exception
    return app


def _shown_text(app: AppTest) -> str:
    parts = [
        element.value
        for kind in ("markdown", "text", "warning", "info", "error", "caption")
        for element in app.get(kind)
    ]
    parts += [str(element.value) for element in app.get("subheader") + app.get("title")]
    for box in app.selectbox:
        parts += [str(option) for option in box.options]
    for box in app.multiselect:
        parts += [str(option) for option in box.options]
    return " ".join(str(part) for part in parts)


def test_a_student_sees_only_their_own_and_shared_runs_on_the_runs_page(classroom: Store) -> None:
    _run(classroom, "student:ada", "ada's secret run")
    bob = _run(classroom, "student:bob", "bob's run")
    shared = _run(classroom, "teacher:lee", "the class example")
    classroom.set_shared(shared.id, True)
    app = signed_in("runs", "Bob")
    assert set(app.dataframe[0].value["id"]) == {bob.id, shared.id}
    labels = app.multiselect(key="chosen_runs").options
    assert sorted(label.split(" (")[0] for label in labels) == ["bob's run", "the class example"]
    assert "ada's secret run" not in _shown_text(app)


def test_a_student_cannot_rename_or_delete_a_shared_run_on_the_runs_page(classroom: Store) -> None:
    shared = _run(classroom, "teacher:lee", "the class example")
    classroom.set_shared(shared.id, True)
    app = signed_in("runs", "Bob")
    app.multiselect(key="chosen_runs").select(shared.id).run()
    app.text_input(key=f"rename_{shared.id}").input("mine now").run()
    app.button(key="rename_run").click().run()
    assert not app.exception, app.exception
    assert any("you may look at it but not change it" in error.value for error in app.error)
    assert classroom.get_run(shared.id).name == "the class example"


@pytest.mark.parametrize("page", ["runs", "train", "evaluate", "predict"])
def test_a_hand_made_link_to_another_students_run_says_not_yours(classroom: Store, page: str) -> None:
    ada = _run(classroom, "student:ada", "ada's secret run")
    app = signed_in(page, "Bob", run_id=ada.id)
    shown = _shown_text(app)
    assert refusal(ada.id) in shown
    assert "ada's secret run" not in shown


def refusal(run_id: str) -> str:
    """The refusal of run `run_id` as a page shows it (escaped, like every id typed into a link)."""
    return as_text(str(not_yours(run_id)))


@pytest.mark.parametrize("page", ["train", "evaluate"])
def test_a_missing_run_and_another_students_get_the_same_answer(classroom: Store, page: str) -> None:
    ada = _run(classroom, "student:ada", "ada's secret run")
    missing = "z" * len(ada.id)  # No run has this id (prefixes: tests/test_access.py).
    app = signed_in(page, "Bob")
    shown = []
    for asked in (ada.id, missing):
        app.query_params["run"] = asked
        app.run()
        assert not app.exception, app.exception
        # The whole page, the id put aside: a student cannot tell which ids exist.
        shown.append(_shown_text(app).replace(as_text(asked), "ID"))
    assert shown[0] == shown[1] and "ID" in shown[0]


def test_another_students_run_stays_refused_on_every_page_after_the_link(classroom: Store) -> None:
    ada = _run(classroom, "student:ada", "ada's secret run")
    app = signed_in("train", "Bob", run_id=ada.id)
    for page in ("model", "train", "evaluate"):
        # A click in the sidebar: the address loses `?run=`, the session still holds the link's run.
        app.switch_page(f"app_pages/{page}.py")
        app.query_params.clear()
        app.run()
        assert not app.exception, app.exception
        shown = _shown_text(app)
        assert "ada's secret run" not in shown  # Not in the sidebar card either.
        if page != "model":
            assert refusal(ada.id) in shown


def test_the_owner_opens_her_run_from_the_same_link(classroom: Store) -> None:
    ada = _run(classroom, "student:ada", "ada's secret run")
    app = signed_in("train", "Ada", run_id=ada.id)
    shown = _shown_text(app)
    assert "ada's secret run" in shown and NOT_YOURS not in shown


def test_a_run_over_the_class_budget_is_refused_on_the_train_page(
    classroom: Store, cnnlab_home: Path
) -> None:
    with (cnnlab_home / "classroom.toml").open("a", encoding="utf-8") as file:
        file.write("\n[limits]\nmax_epochs = 1\n")
    app = signed_in("train", "Ada")
    app.button(key="start_training").click().run()
    assert not app.exception, app.exception
    said = as_text("above this class's limit of 1 (max_epochs in classroom.toml)")  # The error is text.
    assert any(said in error.value for error in app.error), [error.value for error in app.error]
    assert classroom.list_runs() == []


def test_a_student_is_told_the_teacher_paused_or_stopped_her_run(classroom: Store) -> None:
    paused = _run(classroom, "student:ada", "ada's paused run", Status.PAUSED)
    classroom.note_request(paused.id, "pause", by="teacher")
    stopped = make_run(classroom, spec=SPEC, epochs=3, owner=paused.owner, name="ada's stopped run")
    classroom.set_status(stopped.id, Status.STARTING)
    classroom.set_status(stopped.id, Status.RUNNING)
    classroom.add_epoch_metrics(stopped.id, {"epoch": 1, "loss": 0.5, "accuracy": 0.8})
    classroom.request_control(stopped.id, "stop", by="teacher")
    # The worker answers a stop with this reason, whoever asked.
    classroom.set_status(stopped.id, Status.STOPPED, reason="Stopped by the user after 1 epoch(s).")

    train = signed_in("train", "Ada", paused.id)
    # Followed through its stream: the browser says the status and holds Resume off, from the stream's
    # status (who paused it) and what the page gave it.
    watch, requests = stream_elements(train)["watch"], stream_elements(train)["controls"]
    assert watch["sentence"].startswith("Paused by your teacher after epoch 0; only a teacher can resume it")
    assert requests["status"]["requested_by"] == "teacher" and not requests["sees_everything"]
    # Polled (where the stream does not connect), the page says it and draws Resume off itself.
    train.session_state[live_run.FALLBACK] = {paused.id}
    train.run()
    assert "Paused by your teacher after epoch 0; only a teacher can resume it" in _shown_text(train)
    assert train.button(key="resume_run").disabled
    train.query_params["run"] = stopped.id
    train.run()
    assert "Stopped by your teacher after epoch 1. Only a teacher can continue it" in _shown_text(train)
    popovers = [block.proto.popover for block in train.get("popover")]
    continue_popover = next(popover for popover in popovers if popover.label == "Continue")
    assert continue_popover.disabled and "Only a teacher can continue it" in continue_popover.help

    runs = signed_in("runs", "Ada")
    runs.multiselect(key="chosen_runs").set_value([stopped.id]).run()
    shown = _shown_text(runs)
    assert (
        f"stopped: {as_text('Stopped by your teacher after epoch 1.')}" in shown
        and "by the user" not in shown
    )


def test_shared_runs_are_marked_in_a_students_runs_table(classroom: Store) -> None:
    own = _run(classroom, "student:bob", "bob's run")
    shared = _run(classroom, "teacher:lee", "the class example")
    classroom.set_shared(shared.id, True)
    table = signed_in("runs", "Bob").dataframe[0].value
    marks = dict(zip(table["id"], table["shared with the class"], strict=True))
    assert marks == {own.id: False, shared.id: True}


def test_a_student_downloads_only_the_metrics_of_a_run_whose_exercise_hides_settings(
    classroom: Store,
) -> None:
    own = _run(classroom, "student:ada", "ada's own run")
    hidden = make_run(
        classroom,
        spec=SPEC,
        epochs=1,
        owner=own.owner,
        name="hidden layers",
        exercise="week 4",
        exercise_hidden=frozenset({"model_layers"}),
    )
    app = signed_in("runs", "Ada")
    app.multiselect(key="chosen_runs").set_value([hidden.id]).run()
    assert not app.exception
    assert [button.proto.label for button in app.get("download_button")] == ["Metrics (.csv)"]
    assert "hides some of its settings" in _shown_text(app)


SNAPSHOT_KINDS = ("kernels", "feature_maps", "panel", "layer_health", "histograms", "activations")


def _hidden_layers_run(store: Store, trained_home: tuple[Path, str], owner: str) -> str:
    """The run really trained in `trained_home`, copied into `store` as `owner`'s run of an exercise that
    hides the model's layers (its rows, files and snapshots); its id."""
    home, run_id = trained_home
    trained = Store(home)
    rows = trained.export_run_rows(run_id)
    hidden = json.dumps({"locked": [], "hidden": ["model_layers"]})
    rows["runs"][0].update(owner=owner, exercise="week 4", exercise_controls=hidden)
    store.import_run_rows(rows)
    shutil.copytree(trained.run_folder(run_id), store.run_folder(run_id), dirs_exist_ok=True)
    for kind in SNAPSHOT_KINDS:
        for epoch in trained.snapshot_epochs(run_id, kind):
            store.write_snapshot(run_id, epoch, kind, dict(trained.read_snapshot(run_id, epoch, kind)))
    return run_id


def _layer_names(run_id: str, store: Store) -> list[str]:
    """The names of the trained model's layers with kernels (what a page would name them by)."""
    epoch = store.snapshot_epochs(run_id, "kernels")[-1]
    return list(store.read_snapshot(run_id, epoch, "kernels"))


def test_a_student_sees_no_layer_of_a_run_whose_exercise_hides_them(
    classroom: Store, trained_home: tuple[Path, str]
) -> None:
    """Runs' comparison, Train's Filters and Layer health tabs, Evaluate's and Predict's model file and
    layer pickers: the note instead, no layer name, no model file; the student's own run still shows its layers."""
    own = _run(classroom, "student:ada", "ada's own run")
    run_id = _hidden_layers_run(classroom, trained_home, own.owner)
    names = _layer_names(run_id, classroom)
    assert names  # the trained model has convolution layers a page could name

    app = signed_in("runs", "Ada")
    models = dict(zip(app.dataframe[0].value["id"], app.dataframe[0].value["model"], strict=True))
    assert models == {own.id: "tiny", run_id: compare.HIDDEN}  # A preset's name would say its layers.
    app.multiselect(key="chosen_runs").set_value([own.id, run_id]).run()
    table = app.dataframe[-1].value
    hidden_column = next(column for column in table.columns if column.endswith(f"({run_id[-4:]})"))
    assert table.loc["layers", hidden_column] == compare.HIDDEN
    assert table.loc["model.name", hidden_column] == compare.HIDDEN
    layer_rows = table[table.index.str.startswith("layer ")]
    own_column = next(column for column in table.columns if column != hidden_column)
    assert list(layer_rows[own_column]) == ["Flatten → 64", "Dense 10, linear → 10"]
    assert set(layer_rows[hidden_column]) == {"—"}

    app = signed_in("train", "Ada", run_id=run_id)
    for tab in ("Filters and feature maps", "Layer health"):
        app.session_state["live_tabs"] = tab
        app.run()
        assert not app.exception, app.exception
        assert controls.HIDDEN_LAYERS_NOTE in [element.value for element in app.info], tab
        assert not app.get("plotly_chart"), tab
        assert not any(name in _shown_text(app) for name in names), tab

    app = signed_in("evaluate", "Ada", run_id=run_id)
    downloads = [button.proto.label for button in app.get("download_button")]
    assert downloads == ["Download metrics (CSV)"]

    app = signed_in("predict", "Ada", run_id=run_id)
    assert not app.get("download_button")
    app.file_uploader(key="predict_uploads").set_value(("seven.png", digit_png(7), "image/png")).run()
    assert not app.exception, app.exception
    assert controls.HIDDEN_LAYERS_NOTE in [element.value for element in app.info]
    assert "predict_cam_layer" not in [box.key for box in app.selectbox]
    assert not any(name in _shown_text(app) for name in names)


def test_a_student_trying_more_settings_of_their_search_is_held_to_the_class_budget(
    classroom: Store, cnnlab_home: Path
) -> None:
    ada = _user_id(classroom, "student:ada")
    search = Search(sampler="random", pruner="none", trials=2, parallel=2, ranges=(learning_rates(),))
    book = sweeps.Sweeps(classroom)
    owned = dataclasses.replace(template(), owner=ada)
    sweep, queued = trials.start(owned, [], search, Queued(classroom), book, name="ada's")
    for run in queued:
        trained(classroom, run.id, [0.5] * EPOCHS)
    # The teacher lowers the epochs a run may train below what the search's trials train.
    limits = f"\n[limits]\nmax_epochs = {EPOCHS - 1}\n"
    (cnnlab_home / "classroom.toml").write_text(CLASSROOM + limits, encoding="utf-8")

    app = signed_in("runs", "Ada")
    app.query_params["sweep"] = sweep.id
    app.run()
    app.button(key=f"sweep_extend_{sweep.id}").click().run()
    errors = [read_back(error.value) for error in app.error]  # As the learner reads them.
    assert any(
        f"cannot try 6 more settings: The number of epochs is {EPOCHS}, above this class's limit of {EPOCHS - 1} "
        "(max_epochs in classroom.toml)" in error
        for error in errors
    ), errors
    assert book.get(sweep.id).search == search  # Nothing was added.

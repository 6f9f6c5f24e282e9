"""AppTest of the teacher's console and of exercise links, through app.py with a real class configuration.

Users sign in through the join form, as people do (no stand-in for the identity).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from made_runs import make_run
from streamlit.testing.v1 import AppTest

from cnnlab import share
from cnnlab.classroom import exercises, joining, uploads
from cnnlab.classroom.settings import load_settings
from cnnlab.classroom.users import Role
from cnnlab.model import presets
from cnnlab.plain_text import as_text
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.session import controls, presentation, state
from tests.app_pages import APP, column_formats, no_problems, open_page, read_back
from tests.e2e.classroom_servers import CLASS_CODE, TEACHER_PASSWORD, classroom_toml

CONSOLE_TITLE = "Teacher's console"
PIN = "1357"


@pytest.fixture
def classroom_home(cnnlab_home: Path) -> Path:
    """CNNLAB_HOME with a class code and a teacher password configured."""
    (cnnlab_home / "classroom.toml").write_text(classroom_toml())
    return cnnlab_home


def joined(role: str, name: str, page: str | None = None, setup: str | None = None) -> AppTest:
    """The app after `name` joined as `role` ("Student" or "Teacher") through the sign-in form (from a
    `?setup=` link `setup`, if given)."""
    app = AppTest.from_file(str(APP), default_timeout=90)
    if setup is not None:
        app.query_params[state.SETUP_PARAMETER] = setup
    app.run()
    app.radio(key="sign_in_role").set_value(role).run()
    app.text_input(key="sign_in_name").input(name)
    word_key = "sign_in_class_code" if role == "Student" else "sign_in_teacher_password"
    app.text_input(key=word_key).input(CLASS_CODE if role == "Student" else TEACHER_PASSWORD)
    app.text_input(key="sign_in_pin").input(PIN)
    app.button(key="sign_in_join").click().run()
    if page is not None:
        app.switch_page(f"app_pages/{page}.py").run()
    no_problems(app)
    return app


def student(store: Store, name: str) -> str:
    """The id of a student who joined as `name` with the PIN `joined` types (as their first join makes it)."""
    settings = load_settings(store.home)
    return joining.join(store.people, settings, Role.STUDENT, name, CLASS_CODE, PIN, time.time()).id


def titles(app: AppTest) -> list[str]:
    return [title.value for title in app.title]


def not_listed(app: AppTest) -> None:
    """The teacher page is not in the app's page list (AppTest refuses to switch to an unlisted page)."""
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("app_pages/teacher.py")


def test_the_local_user_has_no_teacher_page(cnnlab_home: Path) -> None:
    app = open_page("home").run()
    no_problems(app)
    not_listed(app)


def test_a_student_has_no_teacher_page(classroom_home: Path) -> None:
    not_listed(joined("Student", "Ada"))


def add_run(store: Store, owner: str, name: str) -> str:
    spec = presets.get("mnist_minimal").spec
    return make_run(
        store, spec=spec, epochs=2, name=name, owner=owner, status=Status.COMPLETED, exercise="week 3"
    ).id


def test_the_teacher_sees_every_students_runs_and_shares_one(classroom_home: Path) -> None:
    store = Store(classroom_home)
    ada = add_run(store, student(store, "Ada Lovelace"), "ada's net")
    bo = add_run(store, "student:bo", "bo's net")  # A version-1 owner with no user row.
    store.set_results(ada, {"test_accuracy": 0.91})
    app = joined("Teacher", "Tess", page="teacher")
    assert titles(app) == [CONSOLE_TITLE]
    table = app.dataframe[0].value
    # Display names where known (Bo has no user: his id's name part), and each row's live view.
    assert sorted(table["owner"]) == ["Ada Lovelace", "bo"] and sorted(table["run"]) == [
        "ada's net",
        "bo's net",
    ]
    assert sorted(table["live view"]) == sorted(f"/train?run={run_id}" for run_id in (ada, bo))
    board = app.dataframe[1].value
    assert list(board["owner"]) == ["Ada Lovelace"] and list(board["test accuracy"]) == [0.91]
    assert list(board["live view"]) == [f"/train?run={ada}"]
    # Accuracies are written as percentages and counts with thousands separators, in both tables.
    assert column_formats(app.dataframe[0])["validation accuracy"] == "percent"
    assert column_formats(app.dataframe[1]) == {"test accuracy": "percent", "parameters": "localized"}

    assert app.selectbox(key="teacher_run").value is None  # Nothing is acted on until a run is chosen.
    app.selectbox(key="teacher_run").set_value(bo).run()
    assert any(f"/train?run={bo}" in markdown.value for markdown in app.markdown)  # Its live view.
    assert app.button(key="teacher_stop").disabled  # An ended run has nothing to stop.
    app.button(key="teacher_share").click().run()
    no_problems(app)
    assert store.get_run(bo).shared and not store.get_run(ada).shared
    assert app.button(key="teacher_share").label == "Stop sharing"
    app.button(key="teacher_share").click().run()
    assert not store.get_run(bo).shared


def test_presentation_mode_shows_the_consoles_tables_in_large_type(classroom_home: Path) -> None:
    store = Store(classroom_home)
    ada = add_run(store, "student:ada", "ada's net")
    store.set_results(ada, {"test_accuracy": 0.91})
    app = joined("Teacher", "Tess", page="teacher")
    app.sidebar.toggle(key=presentation.TOGGLE_KEY).set_value(True).run()
    no_problems(app)
    # Canvas grids ignore the page's large type: the class table, the leaderboard and the class's people
    # become HTML tables.
    assert not app.dataframe and len(app.table) == 3
    assert list(app.table[0].value["run"]) == [as_text("ada's net")] and list(app.table[1].value["rank"]) == [
        1
    ]
    assert as_text("Tess") in list(app.table[2].value["name"])
    assert any('[data-testid="stTable"] td' in markdown.value for markdown in app.markdown)


def test_the_teacher_makes_an_exercise_link_a_student_opens(classroom_home: Path) -> None:
    teacher = joined("Teacher", "Tess", page="teacher")
    teacher.text_input(key="teacher_exercise_name").input("Week 3")
    teacher.multiselect(key="teacher_locked").select("epochs")
    teacher.multiselect(key="teacher_hidden").select("optimizer")
    teacher.button(key="teacher_make_link").click().run()
    no_problems(teacher)
    link = teacher.code[0].value
    token = link.split("?exercise=")[1]
    made = exercises.decode(token, exercises.signing_key(classroom_home))
    assert (made.name, made.locked, made.hidden) == ("Week 3", {"epochs"}, {"optimizer"})

    student = joined("Student", "Ada")
    student.query_params[exercises.PARAMETER] = token
    student.switch_page("app_pages/train.py").run()
    no_problems(student)
    assert any("Week 3" in info.value for info in student.info)


def test_an_exercise_link_names_a_shared_upload_by_its_file_and_a_student_trains_on_it(
    classroom_home: Path,
) -> None:
    shared_zip = uploads.class_folder(classroom_home) / "leaves-4567.zip"
    shared_zip.parent.mkdir(parents=True)
    shared_zip.write_bytes(b"PK")
    preset = presets.get(presets.DEFAULT_PRESET)
    setup = share.Setup(DataSettings(dataset=str(shared_zip)), preset.spec, TrainingSettings())
    teacher = joined("Teacher", "Tess", page="teacher", setup=share.encode(setup))
    teacher.text_input(key="teacher_exercise_name").input("Leaves")
    teacher.multiselect(key="teacher_locked").select("dataset")
    teacher.button(key="teacher_make_link").click().run()
    token = teacher.code[0].value.split("?exercise=")[1]
    made = exercises.decode(token, exercises.signing_key(classroom_home))
    assert made.setup.data.dataset == "upload:leaves-4567.zip"
    assert str(classroom_home) not in str(share.payload(token.split(".")[0]))

    student = joined("Student", "Ada")
    student.query_params[exercises.PARAMETER] = token
    student.switch_page("app_pages/train.py").run()
    assert not student.exception, student.exception
    assert student.session_state[state.SETUP_KEY].data.dataset == str(shared_zip)


def test_the_builder_refuses_an_exercise_the_class_limits_refuse_and_names_the_limit(
    cnnlab_home: Path,
) -> None:
    (cnnlab_home / "classroom.toml").write_text(classroom_toml(limits={"max_epochs": 2}))
    teacher = joined("Teacher", "Tess", page="teacher")
    teacher.text_input(key="teacher_exercise_name").input("Too long")
    teacher.multiselect(key="teacher_locked").select("epochs")
    teacher.button(key="teacher_make_link").click().run()
    assert not teacher.exception
    assert not teacher.code  # No link to hand out.
    (refusal,) = [read_back(error.value) for error in teacher.error]
    assert refusal.startswith("Students could not start the exercise 'Too long': The number of epochs is")
    assert "above this class's limit of 2 (max_epochs in classroom.toml)" in refusal


def exercise_link(
    home: Path, locked: set[str], hidden: frozenset[str] = frozenset()
) -> tuple[str, share.Setup]:
    preset = presets.get(presets.DEFAULT_PRESET)
    setup = share.Setup(
        DataSettings(),
        preset.spec,
        # No augmentation: the Data page would start Keras to preview it.
        TrainingSettings(**{**preset.training, "epochs": 3, "learning_rate": 0.004, "augmentation": {}}),
    )
    exercise = exercises.create("Locks", setup, locked, hidden)
    return exercises.encode(exercise, exercises.signing_key(home)), setup


def test_an_exercise_locks_its_controls_on_the_train_data_and_model_pages(cnnlab_home: Path) -> None:
    token, _ = exercise_link(cnnlab_home, {"epochs", "dataset", "model_layers"}, {"optimizer"})
    app = open_page("train")
    app.query_params[exercises.PARAMETER] = token
    app.run()
    no_problems(app)
    assert app.number_input(key="epochs").disabled and app.number_input(key="epochs").value == 3
    assert not app.number_input(key="learning_rate").disabled  # Not locked: the student may change it.
    assert app.number_input(key="learning_rate").value == 0.004  # ... and it starts at the exercise's value.
    assert app.selectbox(key="optimizer").disabled
    hiding = [markdown.value for markdown in app.markdown if ".st-key-optimizer" in markdown.value]
    assert hiding and "display: none" in hiding[0]
    assert not [markdown for markdown in app.markdown if ".st-key-epochs" in markdown.value]

    app.switch_page("app_pages/data.py").run()
    no_problems(app)
    assert app.selectbox(key="dataset_name").disabled
    assert not app.slider(key="validation").disabled
    app.switch_page("app_pages/model.py").run()
    no_problems(app)
    assert any("fixes the model's layers" in info.value for info in app.info)
    assert app.button(key="import_button").disabled
    assert not [button for button in app.button if button.key and button.key.startswith("add_")]


def test_hidden_layers_are_hidden_in_the_layer_table_code_json_and_downloads(cnnlab_home: Path) -> None:
    token, setup = exercise_link(cnnlab_home, set(), frozenset({"model_layers"}))
    app = open_page("model")
    app.query_params[exercises.PARAMETER] = token
    app.run()
    no_problems(app)
    layer_types = {layer.type for layer in setup.model.layers}
    shown = " ".join([element.value for element in app.code] + [element.value for element in app.markdown])
    assert not any(layer_type in shown for layer_type in layer_types), shown[:500]
    assert "analysis_table" not in {frame.key for frame in app.dataframe if hasattr(frame, "key")}
    assert not app.dataframe and not app.get("plotly_chart")
    assert not app.get("download_button")
    assert sum("hides the model's layers" in info.value for info in app.info) >= 2
    assert any("Keras code is not shown" in info.value for info in app.info)

    # Without the exercise the same page shows them all.
    app = open_page("model").run()
    assert app.dataframe and any("Conv2D" in element.value for element in app.code)


def test_a_forged_exercise_link_is_refused_and_the_draft_kept(cnnlab_home: Path) -> None:
    token, _ = exercise_link(cnnlab_home, {"epochs"})
    body, signature = token.split(".")
    content = share.payload(body)
    content["locked"] = []
    content["setup"]["training"]["epochs"] = 99
    app = open_page("train")
    app.query_params[exercises.PARAMETER] = f"{share.pack(content)}.{signature}"
    app.run()
    assert not app.exception
    assert app.error and "was changed after the teacher made it" in app.error[0].value
    assert app.number_input(key="epochs").value != 99 and not app.number_input(key="epochs").disabled
    assert controls.EXERCISE_KEY not in app.session_state


def test_presentation_mode_is_kept_across_pages(cnnlab_home: Path) -> None:
    app = open_page("home").run()
    app.sidebar.toggle(key=presentation.TOGGLE_KEY).set_value(True).run()
    assert any("stSidebar" in markdown.value for markdown in app.markdown)
    app.switch_page("app_pages/runs.py").run()
    no_problems(app)
    assert any("stSidebar" in markdown.value for markdown in app.markdown)
    assert app.query_params.get(presentation.PARAMETER) == "1"
    app.button(key=presentation.LEAVE_KEY).click().run()
    assert not any("stSidebar" in markdown.value for markdown in app.markdown)


def test_a_present_link_opens_in_presentation_mode(cnnlab_home: Path) -> None:
    app = open_page("learn")
    app.query_params[presentation.PARAMETER] = "1"
    app.run()
    no_problems(app)
    assert app.sidebar.toggle(key=presentation.TOGGLE_KEY).value
    assert any("display: none" in markdown.value for markdown in app.markdown)


def captions(app: AppTest) -> list[str]:
    return [caption.value for caption in app.caption]


def test_a_teachers_runs_page_names_each_runs_owner_and_a_run_page_says_whose(classroom_home: Path) -> None:
    store = Store(classroom_home)
    ada = add_run(store, student(store, "Ada Lovelace"), "ada's net")
    teacher = joined("Teacher", "Tess", page="runs")
    assert list(teacher.dataframe[0].value["owner"]) == ["Ada Lovelace"]
    teacher.multiselect(key="chosen_runs").select(ada).run()
    no_problems(teacher)
    assert ":material/person: Ada Lovelace\\'s run." in captions(teacher)

    ada_app = joined("Student", "Ada Lovelace", page="runs")
    assert "owner" not in ada_app.dataframe[0].value.columns  # A student's table holds only their own runs.
    ada_app.multiselect(key="chosen_runs").select(ada).run()
    assert ":material/person: Your run." in captions(ada_app)


def test_a_paused_run_is_resumed_from_the_console_with_resume(classroom_home: Path) -> None:
    """The console's word for a paused run is the Train page's: Resume ("Continue" there means more
    epochs for an ended run)."""
    store = Store(classroom_home)
    run_id = make_run(store, owner=student(store, "Ada Lovelace"), name="ada's net", status=Status.PAUSED).id
    app = joined("Teacher", "Tess", page="teacher")
    app.selectbox(key="teacher_run").set_value(run_id).run()
    assert app.button(key="teacher_resume").label == "Resume"
    app.button(key="teacher_resume").click().run()
    no_problems(app)
    assert store.get_run(run_id).control == "resume"

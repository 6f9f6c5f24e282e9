"""Owned uploads: each user's zips are theirs (a teacher may share one with the class), a setup that
names another student's upload is refused like another student's run, and pages name files, not folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from made_runs import make_run
from streamlit.testing.v1 import AppTest

from cnnlab import share
from cnnlab.classroom import joining, uploads
from cnnlab.classroom.access import RunAccess
from cnnlab.classroom.settings import load_settings
from cnnlab.classroom.users import LOCAL_USER, Role, User
from cnnlab.errors import AccessError
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.session import state
from cnnlab.ui.widgets import run_table
from tests.app_pages import open_page, read_back
from tests.e2e.classroom_servers import classroom_toml

ADA = User("student:ada", "Ada", Role.STUDENT)
BOB = User("student:bob", "Bob", Role.STUDENT)
TESS = User("teacher:tess", "Tess", Role.TEACHER)


def test_students_use_their_own_uploads_and_the_classs_teachers_any(tmp_path: Path) -> None:
    ada_zip = str(uploads.folder_of(tmp_path, ADA) / "pets-0123.zip")
    class_zip = str(uploads.class_folder(tmp_path) / "leaves-4567.zip")
    outside = str(tmp_path / "elsewhere" / "secret.zip")
    assert uploads.folder_of(tmp_path, ADA) != uploads.folder_of(tmp_path, BOB)
    assert uploads.may_use(tmp_path, ADA, ada_zip) and uploads.may_use(tmp_path, ADA, class_zip)
    assert not uploads.may_use(tmp_path, BOB, ada_zip) and uploads.may_use(tmp_path, BOB, class_zip)
    assert not uploads.may_use(
        tmp_path, BOB, ada_zip + "/../../" + Path(ada_zip).parent.name + "/pets-0123.zip"
    )
    assert uploads.may_use(tmp_path, TESS, ada_zip) and uploads.may_use(tmp_path, LOCAL_USER, ada_zip)
    assert not any(uploads.may_use(tmp_path, user, outside) for user in (ADA, TESS, LOCAL_USER))
    assert all(uploads.may_use(tmp_path, user, "digits") for user in (ADA, BOB, TESS, LOCAL_USER))
    assert uploads.folder_of(tmp_path, LOCAL_USER) == uploads.uploads_root(tmp_path)  # As before sign-in.


def test_a_student_cannot_train_on_another_students_upload(home_store: Store) -> None:
    ada_zip = str(uploads.folder_of(home_store.home, ADA) / "pets-0123.zip")
    request = RunRequest(presets.get("digits_default").spec, data_settings=DataSettings(dataset=ada_zip))
    with pytest.raises(AccessError, match=r"'pets-0123\.zip' is not one you can open") as refused:
        RunAccess(home_store, BOB).submit(request, start=False)
    assert str(home_store.home) not in str(refused.value)  # Named by its file, not its folder.
    assert RunAccess(home_store, ADA).submit(request, start=False).owner == ADA.id
    assert len(home_store.list_runs()) == 1


def student_opens_setup_link(dataset: str, name: str = "Bob") -> AppTest:
    """The Model page opened by student `name` (joined with the class code) from a ?setup= link naming `dataset`."""
    app = open_page("model")
    preset = presets.get("digits_default")
    setup = share.Setup(DataSettings(dataset=dataset), preset.spec, TrainingSettings(**preset.training))
    app.query_params[state.SETUP_PARAMETER] = share.encode(setup)
    app.run()
    app.text_input(key="sign_in_name").input(name)
    app.text_input(key="sign_in_class_code").input("conv-class-7")
    app.text_input(key="sign_in_pin").input("2468")
    app.button(key="sign_in_join").click().run()
    assert not app.exception, app.exception
    return app


def test_a_setup_link_naming_another_students_upload_is_refused(cnnlab_home: Path) -> None:
    (cnnlab_home / "classroom.toml").write_text(classroom_toml())
    ada_zip = uploads.folder_of(cnnlab_home, ADA) / "pets-0123.zip"
    app = student_opens_setup_link(str(ada_zip))
    assert app.session_state[state.SETUP_KEY].data.dataset == "digits"
    notes = " ".join(warning.value for warning in app.warning)
    assert "pets\\-0123\\.zip" in notes and "not one you can open" in notes
    assert str(ada_zip.parent) not in notes and "uploads" not in notes  # No server folder on the page.
    class_zip = uploads.class_folder(cnnlab_home) / "leaves-4567.zip"
    assert student_opens_setup_link(str(class_zip)).session_state[state.SETUP_KEY].data.dataset == str(
        class_zip
    )


def test_the_runs_table_names_an_upload_by_its_file(home_store: Store) -> None:
    upload = uploads.folder_of(home_store.home, ADA) / "pets-0123.zip"
    run = make_run(home_store, data=DataSettings(dataset=str(upload)), status=Status.COMPLETED, owner=ADA.id)
    assert list(run_table.runs_table([run])["dataset"]) == ["pets-0123.zip"]


def test_a_link_names_an_upload_by_its_file_and_the_server_finds_it_for_its_user(tmp_path: Path) -> None:
    ada_zip = uploads.folder_of(tmp_path, ADA) / "pets-0123.zip"
    class_zip = uploads.class_folder(tmp_path) / "leaves-4567.zip"
    for path in (ada_zip, class_zip):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PK")
    assert uploads.link_name(tmp_path, str(ada_zip)) == "upload:pets-0123.zip"
    assert uploads.link_name(tmp_path, "digits") == "digits"
    assert uploads.resolve_link_name(tmp_path, ADA, "upload:pets-0123.zip") == str(ada_zip)
    assert uploads.resolve_link_name(tmp_path, BOB, "upload:leaves-4567.zip") == str(class_zip)
    assert uploads.resolve_link_name(tmp_path, TESS, "upload:pets-0123.zip") == str(ada_zip)
    # Another student's file, a name with folders in it: found for nobody, left as it was.
    for name in ("upload:pets-0123.zip", f"upload:../{ada_zip.parent.name}/pets-0123.zip", "upload:.."):
        assert uploads.resolve_link_name(tmp_path, BOB, name) == name
    preset = presets.get("digits_default")
    setup = share.Setup(DataSettings(dataset=str(ada_zip)), preset.spec, TrainingSettings())
    linked = uploads.setup_for_link(tmp_path, setup)
    assert linked.data.dataset == "upload:pets-0123.zip" and str(tmp_path) not in share.encode(linked)
    assert uploads.setup_from_link(tmp_path, ADA, linked) == setup


def test_the_address_of_a_students_draft_names_her_upload_by_its_file(cnnlab_home: Path) -> None:
    """Ada opens a link naming her upload by file: the draft trains on her zip, and the address's
    `?setup=` token holds the file's name, never the server's folder; Bob's same link is refused."""
    (cnnlab_home / "classroom.toml").write_text(classroom_toml())
    settings = load_settings(cnnlab_home)
    ada = joining.join(Store(cnnlab_home).people, settings, Role.STUDENT, "Ada", "conv-class-7", "2468", 0.0)
    ada_zip = uploads.folder_of(cnnlab_home, ada) / "pets-0123.zip"
    ada_zip.parent.mkdir(parents=True)
    ada_zip.write_bytes(b"PK")
    app = student_opens_setup_link("upload:pets-0123.zip", "Bob")
    assert app.session_state[state.SETUP_KEY].data.dataset == "digits"
    said = " ".join(read_back(warning.value) for warning in app.warning)
    assert "'upload:pets-0123.zip', which is not one you can open here" in said
    app = student_opens_setup_link("upload:pets-0123.zip", "Ada")
    assert app.session_state[state.SETUP_KEY].data.dataset == str(ada_zip)
    address = str(share.payload(app.query_params[state.SETUP_PARAMETER]))
    assert "upload:pets-0123.zip" in address and str(cnnlab_home) not in address

"""AppTest of the sign-in gate at the top of app.py (the browser tests cover cookies and OpenID)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.plain_text import as_text
from cnnlab.store.run_store import Store
from tests.app_pages import no_problems, open_page, read_back

SECRET = "0123456789abcdef-the-class-secret"
CLASSROOM = f"""
class_code = "conv-class-7"
teacher_password = "pool-and-stride"
secret = "{SECRET}"
"""


def _sidebar_text(app: AppTest) -> str:
    return " ".join(str(element.value) for element in app.sidebar.markdown)


def _join(app: AppTest, name: str, word: str, role: str = "Student", pin: str = "2468") -> AppTest:
    if role != "Student":
        app.radio(key="sign_in_role").set_value(role).run()
    app.text_input(key="sign_in_name").input(name)
    app.text_input(key="sign_in_pin").input(pin)
    word_key = "sign_in_class_code" if role == "Student" else "sign_in_teacher_password"
    app.text_input(key=word_key).input(word)
    return app.button(key="sign_in_join").click().run()


def test_without_a_classroom_nobody_signs_in(cnnlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    app = open_page("learn").run()
    no_problems(app)
    assert not [title for title in app.title if title.value == "Sign in to CNN Lab"]
    assert "Signed in as" not in _sidebar_text(app)
    assert not [button for button in app.button if button.key == "sign_out"]


def test_a_student_joins_and_signs_out(cnnlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    (cnnlab_home / "classroom.toml").write_text(CLASSROOM)
    app = open_page("learn").run()
    assert [title.value for title in app.title] == ["Sign in to CNN Lab"]
    assert [radio.options for radio in app.radio] == [["Student", "Teacher"]]

    _join(app, "Ada Lovelace", "wrong-code")
    assert [error.value for error in app.error] == [
        as_text("That class code is not right. Check it with your teacher and type it again.")
    ]
    assert "Signed in as" not in _sidebar_text(app)

    _join(app, "Ada Lovelace", "conv-class-7")
    no_problems(app)
    assert "Signed in as **Ada Lovelace** · student" in _sidebar_text(app)
    session_id = app.session_state["classroom_session"]
    session = Store(cnnlab_home).people.session(session_id)
    assert session is not None and session.user is not None and session.user.name == "Ada Lovelace"
    assert session.ended_at is None

    app.button(key="sign_out").click().run()
    assert [title.value for title in app.title] == ["Sign in to CNN Lab"]
    assert "Signed in as" not in _sidebar_text(app)
    assert Store(cnnlab_home).people.session(session_id).end_reason == "signed out"  # type: ignore[union-attr]


def test_a_second_alan_cannot_join_as_alan(cnnlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    (cnnlab_home / "classroom.toml").write_text(CLASSROOM)
    _join(open_page("learn").run(), "Alan", "conv-class-7", pin="1234")
    impostor = _join(open_page("learn").run(), "ＡＬＡＮ", "conv-class-7", pin="9999")
    assert [error.value for error in impostor.error] == [  # Shown as text: it quotes a typed name.
        as_text(
            "The name 'Alan' is already taken in this class. If it is yours, type the PIN you chose when you "
            "first joined; otherwise choose another name. Forgot your PIN? Your teacher can clear it."
        )
    ]
    assert "Signed in as" not in _sidebar_text(impostor)


def test_a_teacher_joins_with_the_password(cnnlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    (cnnlab_home / "classroom.toml").write_text(CLASSROOM)
    app = _join(open_page("learn").run(), "Ms. O'Hara_T", "pool-and-stride", role="Teacher")
    no_problems(app)
    # Markdown characters in a name are escaped (`as_text`), so it shows as typed.
    name = as_text("Ms. O'Hara_T")
    assert f"Signed in as **{name}** · teacher" in _sidebar_text(app)


def test_a_bad_classroom_file_stops_every_page(cnnlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    (cnnlab_home / "classroom.toml").write_text('class_code = "conv-class-7"\n')
    app = open_page("learn").run()
    assert not app.exception
    assert len(app.error) == 1 and "'secret'" in read_back(app.error[0].value)
    assert not app.title and not app.text_input

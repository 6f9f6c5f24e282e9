"""After a script run the app leaves Keras as it is: Streamlit's own step would clear Keras's session
(and collect all garbage) after every run of every session (`cnnlab.ui.script_runs`)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import keras
import pytest
from streamlit.runtime.scriptrunner import script_runner

from cnnlab.ui import script_runs
from tests.app_pages import no_problems, open_page

pytestmark = pytest.mark.usefixtures("cnnlab_home")


@pytest.fixture
def keras_clears(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Each call of `keras.backend.clear_session` while the test runs (the call still happens)."""
    calls: list[str] = []
    clear_session = keras.backend.clear_session

    def counted(*arguments: object, **keywords: object) -> None:
        calls.append("clear_session")
        clear_session(*arguments, **keywords)

    monkeypatch.setattr(keras.backend, "clear_session", counted)
    yield calls


def test_a_page_run_does_not_clear_keras(keras_clears: list[str]) -> None:
    app = open_page("home").run()
    no_problems(app)
    app.run()  # A rerun, as a click makes.
    assert keras_clears == []


def test_the_step_replaced_is_streamlits_and_would_clear_keras(keras_clears: list[str]) -> None:
    """Streamlit still runs a step by that name after each script, and its own step clears Keras."""
    assert "_clean_problem_modules" in inspect.getsource(script_runner.ScriptRunner._run_script)
    script_runs.STREAMLITS_STEP()
    assert keras_clears == ["clear_session"]

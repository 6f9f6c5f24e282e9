"""Opening the app on one page for AppTest: through app.py and its navigation, as a user would."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"


def open_page(name: str, run_id: str | None = None, timeout: float = 90) -> AppTest:
    """The app on page `name` (e.g. "train"), following `run_id` if given; not yet run."""
    app = AppTest.from_file(str(APP), default_timeout=timeout)
    if name != "home":
        app.switch_page(f"app_pages/{name}.py")
    if run_id:
        app.query_params["run"] = run_id
    return app


def no_problems(app: AppTest) -> None:
    """The page ran without an exception and shows no error message."""
    assert not app.exception, app.exception
    assert not app.error, [element.value for element in app.error]

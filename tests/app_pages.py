"""Opening the app on one page for AppTest: through app.py and its navigation, as a user would."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Dataframe

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


def column_formats(frame: Dataframe) -> dict[str, str]:
    """How the page asks the browser to write each column of a data frame that has a format (its
    `st.column_config` format: "localized", "percent", a momentJS pattern ...), by column name."""
    columns = json.loads(frame.proto.columns or "{}")
    formats = {name: column.get("type_config", {}).get("format") for name, column in columns.items()}
    return {name: format_ for name, format_ in formats.items() if format_ is not None}


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def read_back(markdown: str) -> str:
    """What a user reads of markdown made by `cnnlab.plain_text.as_text`: the escapes taken off."""
    return _ESCAPED.sub(r"\1", markdown).replace("\u2060", "")


def stream_elements(app: AppTest) -> dict[str, dict]:
    """The data the page sent its live-stream elements (`cnnlab.ui.stream.live_chart`), by mode
    ("watch", "curves"): AppTest runs no JavaScript, so this is what the browser would be given."""
    sent = [json.loads(element.proto.json) for element in app.get("bidi_component")]
    return {data["mode"]: data for data in sent if "mode" in data}

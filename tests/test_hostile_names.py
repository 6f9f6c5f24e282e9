"""User text stays text: a hostile name (bold, a link, an image, HTML, math, a shortcode) in a run name,
a display name, a sweep, an exercise and a link's run id, through every page in AppTest.

Each page's markdown (markdown, captions, headers, alerts) must hold the name only in its escaped
form (`cnnlab.plain_text.as_text`), which CommonMark reads back as the very characters typed.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Iterator
from pathlib import Path

import markdown_it
import pytest
from made_runs import make_run
from streamlit.testing.v1 import AppTest

from cnnlab.classroom.joining import new_user_id
from cnnlab.plain_text import as_chart_text, as_text
from cnnlab.runs.queue import sweeps
from cnnlab.runs.queue.sweep_plan import axis, plan
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.session import presentation
from tests.app_pages import no_problems, open_page
from tests.e2e.classroom_servers import classroom_toml, known_openid_user
from tests.test_page_teacher import joined
from tests.test_sweeps import SPEC, QueueInStore

HOSTILE = "**bold** [link](http://x) ![img](http://127.0.0.1:9/x.png) <b>html</b> $math$ :emoji:"
# What would render as markup if the name reached markdown unescaped.
RAW_MARKS = ("**bold**", "[link](", "![img](", "<b>html", "$math$", ":emoji:")


def shown_markdown(app: AppTest) -> Iterator[str]:
    """The text of every element of the page that Streamlit renders as markdown."""
    for kind in (
        "markdown",
        "caption",
        "title",
        "header",
        "subheader",
        "success",
        "info",
        "warning",
        "error",
    ):
        for element in getattr(app, kind):
            yield str(element.value)
    for kind in ("button", "checkbox", "toggle", "selectbox", "multiselect", "text_input", "radio"):
        for widget in getattr(app, kind):
            yield str(widget.label)


def check_page(app: AppTest, expect_name: bool = True) -> None:
    """No markdown of the page holds the hostile name unescaped; where expected, it holds it escaped."""
    assert not app.exception, app.exception
    texts = list(shown_markdown(app))
    raw = [text for text in texts if any(mark in text for mark in RAW_MARKS)]
    assert not raw, raw
    if expect_name:
        assert any(as_text(HOSTILE) in text for text in texts), texts


def test_escaped_text_reads_back_as_the_characters_typed() -> None:
    rendered = markdown_it.MarkdownIt("commonmark").render(as_text(HOSTILE)).replace("\u2060", "")
    assert rendered == f"<p>{html.escape(HOSTILE, quote=False)}</p>\n"  # No <strong>, <a>, <img> or <b>.
    assert as_text("two\nlines") == "two lines"
    assert as_chart_text("<b>html</b> & <a href='x'>") == "&lt;b&gt;html&lt;/b&gt; &amp; &lt;a href='x'&gt;"


def test_a_hostile_run_and_sweep_name_are_text_on_home_runs_and_train(home_store: Store) -> None:
    run = make_run(home_store, name=HOSTILE, status=Status.COMPLETED)
    planned = plan(SPEC, TrainingSettings(epochs=2), [axis("learning_rate", "1e-3,1e-2")])
    sweep, queued = sweeps.submit(
        planned,
        QueueInStore(home_store),
        sweeps.Sweeps(home_store),
        data_settings=DataSettings(subset=300),
        name=HOSTILE,
        owner="local",
    )
    home_store.rename_run(queued[0].id, HOSTILE)
    check_page(open_page("home").run(), expect_name=False)
    runs = open_page("runs")
    runs.query_params["sweep"] = sweep.id
    runs.run()
    runs.multiselect(key="chosen_runs").select(run.id).run()
    no_problems(runs)
    check_page(runs)
    check_page(open_page("train", run.id).run())


def test_a_hostile_run_id_in_a_link_is_text(home_store: Store) -> None:
    make_run(home_store, name="a run", status=Status.COMPLETED)
    check_page(open_page("runs", HOSTILE).run(), expect_name=False)
    check_page(open_page("evaluate", HOSTILE).run())
    check_page(open_page("train", HOSTILE).run())


@pytest.fixture
def hostile_trained_home(
    trained_home: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A copy of the trained home whose run has the hostile name, as CNNLAB_HOME; the run id."""
    home = tmp_path / "home"
    shutil.copytree(trained_home[0], home)
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    Store(home).rename_run(trained_home[1], HOSTILE)
    return trained_home[1]


def test_a_hostile_run_name_is_text_on_evaluate_and_predict(hostile_trained_home: str) -> None:
    for page in ("evaluate", "predict"):
        app = open_page(page, hostile_trained_home).run()
        no_problems(app)
        check_page(app, expect_name=False)  # The name is in the run picker (plain text), not in markdown.


def test_hostile_names_are_text_on_the_teachers_console_and_runs_page(cnnlab_home: Path) -> None:
    (cnnlab_home / "classroom.toml").write_text(classroom_toml())
    store = Store(cnnlab_home)
    # A school account's name is the token's, unchecked: any text at all.
    ada = known_openid_user(cnnlab_home, "https://school.example", "ada", new_user_id(), HOSTILE)
    run = make_run(store, owner=ada, name=HOSTILE, status=Status.COMPLETED, exercise=HOSTILE)
    store.set_results(run.id, {"test_accuracy": 0.9})
    teacher = joined("Teacher", "Tess", page="teacher")
    teacher.selectbox(key="teacher_run").set_value(run.id).run()
    check_page(teacher)
    teacher.sidebar.toggle(key=presentation.TOGGLE_KEY).set_value(
        True
    ).run()  # Tables as HTML: markdown cells.
    cells = [str(cell) for table in teacher.table for cell in table.value.to_numpy().ravel()]
    assert as_text(HOSTILE) in cells and HOSTILE not in cells
    teacher.switch_page("app_pages/runs.py").run()
    teacher.multiselect(key="chosen_runs").select(run.id).run()
    check_page(teacher)

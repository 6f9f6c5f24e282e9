"""User text stays text: a hostile name (bold, a link, an image, HTML, math, a shortcode) in a run name,
a display name, a sweep, an exercise and a link's run id, through every page in AppTest.

Each page's markdown (markdown, captions, headers, alerts) must hold the name only in its escaped
form (`cnnlab.plain_text.as_text`), which CommonMark reads back as the very characters typed.
"""

from __future__ import annotations

import html
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import markdown_it
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from made_runs import make_run
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnnlab import share
from cnnlab.classroom import uploads
from cnnlab.classroom.joining import new_user_id
from cnnlab.figures import data as data_figures
from cnnlab.figures import inspection as inspection_figures
from cnnlab.figures import training as training_figures
from cnnlab.model import presets
from cnnlab.plain_text import as_chart_text, as_text
from cnnlab.runs.queue import sweeps
from cnnlab.runs.queue.sweep_plan import axis, plan
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.diagnoses import Diagnosis
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


def test_a_diverged_runs_reason_hint_and_diagnoses_that_embed_user_text_are_text(home_store: Store) -> None:
    """Core text that quotes a user's words (a run's reason and hint, a diagnosis's cause and fix)
    is shown escaped on the Train page, in its status line and its diagnoses."""
    run = make_run(home_store, name="a run", status=Status.STARTING)
    home_store.set_status(run.id, Status.RUNNING)
    home_store.add_diagnosis(run.id, Diagnosis("overfitting", 1, f"cause {HOSTILE}", f"fix {HOSTILE}"))
    home_store.set_status(run.id, Status.DIVERGED, reason=f"reason {HOSTILE}", hint=f"hint {HOSTILE}")
    app = open_page("train", run.id).run()
    check_page(app)
    said = " ".join(shown_markdown(app))
    for part in ("reason", "hint", "cause", "fix"):
        assert f"{part} {as_text(HOSTILE)}" in said, part


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


# A zip's folder names become class names, which plotly would render as HTML (bold, a link).
HOSTILE_CLASS = "<b>bold <a href=x>link"  # No slash: a folder's name in a zip.
CHART_MARKS = ("<b>", "<a href")


def chart_texts(figure: go.Figure | str) -> str:
    """A figure's whole JSON (a figure, or the spec Streamlit sends), with its escapes read back."""
    spec = figure if isinstance(figure, str) else figure.to_json()
    return json.dumps(json.loads(spec), ensure_ascii=False)


def check_chart(figure: go.Figure | str) -> None:
    """The chart holds the hostile class name only escaped (`as_chart_text`)."""
    text = chart_texts(figure)
    assert not [mark for mark in CHART_MARKS if mark in text], text[:400]
    assert as_chart_text(HOSTILE_CLASS) in text


def test_hostile_class_names_are_text_in_every_chart_of_classes() -> None:
    names = ["cats", HOSTILE_CLASS]
    images = np.zeros((4, 8, 8, 1), np.uint8)
    labels = np.array([0, 1, 0, 1])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    check_chart(training_figures.confusion_matrix(np.array([[1, 1], [1, 1]]), names))
    check_chart(training_figures.prediction_panel(images, labels, probabilities, names))
    check_chart(inspection_figures.top_k(probabilities[1], names))
    check_chart(data_figures.samples_per_class(images.astype(np.float32), labels, names))
    check_chart(data_figures.class_balance(pd.DataFrame({"train": [2, 2]}, index=names)))


def hostile_zip(folder: Path) -> Path:
    """A zip with a class folder of the hostile name, and a skipped file whose name closes a fence."""
    path = folder / "pets-hostile.zip"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for class_name in ("cats", HOSTILE_CLASS):
            for index in range(6):
                image = io.BytesIO()
                Image.new("L", (12, 12), 40 * index).save(image, "PNG")
                archive.writestr(f"{class_name}/{index}.png", image.getvalue())
        archive.writestr("cats/``` **out** ![img](y.png).png", b"not an image")
    return path


def test_hostile_folder_and_file_names_are_text_on_the_data_page(cnnlab_home: Path) -> None:
    archive = hostile_zip(uploads.uploads_root(cnnlab_home))
    app = open_page("data")
    app.query_params["setup"] = share.encode(
        share.Setup(
            DataSettings(dataset=str(archive)), presets.get("digits_default").spec, TrainingSettings()
        )
    )
    app.run()
    assert not app.exception, app.exception
    charts = [element.proto.spec for element in app.get("plotly_chart")]
    assert charts  # Samples and class balance.
    for spec in charts:
        check_chart(spec)
    (skipped,) = [warning.value for warning in app.warning if "skipped" in warning.value]
    assert "```" not in skipped and "**out**" not in skipped and "![img](" not in skipped
    assert as_text("``` **out** ![img](y.png).png") in skipped, skipped


def _run_picker_page() -> None:
    """The Evaluate and Predict pages' run picker alone, with the run it returns."""
    import streamlit as st

    from cnnlab.ui.cache import run_models

    st.text(run_models.choose_run("evaluate_run").id)


def test_the_run_picker_keeps_the_chosen_run_after_its_status_changes(home_store: Store) -> None:
    runs = [make_run(home_store, name=name, status=Status.RUNNING) for name in ("alan's", "ada's")]
    for run in runs:
        home_store.save_checkpoint(run.id, "latest", 1, lambda path: path.write_bytes(b"weights"))
    app = AppTest.from_function(_run_picker_page).run()
    app.selectbox(key="evaluate_run").set_value(runs[0].id).run()
    home_store.set_status(runs[0].id, Status.PAUSED)  # Its label changes: "running" becomes "paused".
    app.run()
    picker = app.selectbox(key="evaluate_run")
    assert picker.value == runs[0].id and app.text[0].value == runs[0].id
    assert "paused" in picker.format_func(picker.value)  # type: ignore[misc]


def test_a_hostile_reason_of_a_failed_run_is_text_on_the_train_page(home_store: Store) -> None:
    run = make_run(home_store, name=HOSTILE, status=Status.RUNNING)
    home_store.set_status(run.id, Status.FAILED, reason=f"The folder {HOSTILE} has no images.")
    app = open_page("train", run.id).run()
    check_page(app)
    assert any(as_text(HOSTILE) in error.value for error in app.error), [error.value for error in app.error]

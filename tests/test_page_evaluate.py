"""AppTest of the Evaluate page against a run really trained for one epoch in a temporary home."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.runs.store import Store
from tests.app_pages import no_problems, open_page

TIMEOUT = 90


@pytest.fixture
def home(trained_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CNNLAB_HOME", str(trained_home[0]))
    return trained_home[0]


def evaluate_page(run_id: str | None = None) -> AppTest:
    return open_page("evaluate", run_id, TIMEOUT).run()


def test_without_runs_points_to_the_train_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path))
    app = evaluate_page()
    no_problems(app)
    assert "No run has saved a model yet" in app.info[0].value
    assert not app.get("plotly_chart")


def test_shows_the_runs_test_metrics_table_and_confusion(home: Path, trained_home: tuple[Path, str]) -> None:
    run_id = trained_home[1]
    app = evaluate_page()
    no_problems(app)
    assert app.selectbox(key="evaluate_run").value == run_id  # The newest completed run by default.
    assert app.query_params["run"] == run_id
    run = Store(home).get_run(run_id)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Test accuracy"] == f"{run.result('test_accuracy'):.1%}"
    assert float(metrics["Test loss"]) == pytest.approx(run.result("test_loss"), rel=1e-3, abs=1e-4)
    report = app.dataframe[0].value
    assert list(report["class"]) == [str(digit) for digit in range(10)]
    assert int(report["support"].sum()) == int(metrics["Images"].replace(",", ""))
    assert len(app.get("plotly_chart")) >= 2  # The confusion matrix and the mistakes.


def test_picking_a_cell_shows_its_images(home: Path, trained_home: tuple[Path, str]) -> None:
    app = evaluate_page(trained_home[1])
    app.selectbox(key="evaluate_true_class").set_value(3)
    app.selectbox(key="evaluate_predicted_class").set_value(3).run()
    no_problems(app)
    assert any("correct image(s): true 3, predicted 3" in element.value for element in app.markdown)
    app.toggle(key="evaluate_cell_cam").set_value(True).run()
    app.toggle(key="evaluate_normalise").set_value(True).run()
    no_problems(app)


def test_latest_checkpoint_and_validation_split(home: Path, trained_home: tuple[Path, str]) -> None:
    app = evaluate_page(trained_home[1])
    app.radio(key="evaluate_checkpoint").set_value("latest")
    app.radio(key="evaluate_split").set_value("validation").run()
    no_problems(app)
    assert "Validation accuracy" in [metric.label for metric in app.metric]


def test_the_best_checkpoint_shows_one_epoch_and_one_number(
    peaked_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run picker, the checkpoint picker and the measured validation accuracy agree on the best
    epoch of a run whose validation accuracy peaked before its last epoch."""
    from cnnlab.trained import checkpoints

    home, run_id = peaked_home
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    best = checkpoints.best_epoch(Store(home), run_id)
    assert best is not None and best.epoch < Store(home).get_run(run_id).last_epoch
    app = evaluate_page(run_id)
    app.radio(key="evaluate_split").set_value("validation").run()
    no_problems(app)
    shown = f"epoch {best.epoch}, val. accuracy {best.value:.1%}"
    picker = app.selectbox(key="evaluate_run")
    assert f"best {shown}" in picker.format_func(picker.value)
    radio = app.radio(key="evaluate_checkpoint")
    assert radio.value == "best" and radio.format_func("best") == f"best ({shown})"
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Validation accuracy"] == f"{best.value:.1%}"

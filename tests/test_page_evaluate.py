"""AppTest of the Evaluate page against a run really trained for one epoch in a temporary home."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.store.run_store import Store
from tests.app_pages import column_formats, no_problems, open_page, read_back

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
    report = app.dataframe[1].value  # Under the confusion table.
    assert list(report["class"]) == [str(digit) for digit in range(10)]
    assert int(report["support"].sum()) == int(metrics["Images"].replace(",", ""))
    assert column_formats(app.dataframe[1])["support"] == "localized"  # A count, as every table writes one.
    # The confusion matrix is a table (no plotly on this page): true classes down, predictions across;
    # each row adds up to its class's support, the diagonal to the correct answers.
    assert not app.get("plotly_chart")
    confusion = app.dataframe[0].value
    assert list(confusion.columns) == list(report["class"]) == list(confusion.index)
    assert list(confusion.sum(axis=1).astype(int)) == list(report["support"])
    images = int(metrics["Images"].replace(",", ""))
    assert images - int(np.trace(confusion.to_numpy())) == int(metrics["Mistakes"].replace(",", ""))
    assert len(app.get("image")) == 2  # The images of its commonest confusion, and the mistakes.


def test_picking_a_cell_shows_its_images(home: Path, trained_home: tuple[Path, str]) -> None:
    app = evaluate_page(trained_home[1])
    app.selectbox(key="evaluate_true_class").set_value(3)
    app.selectbox(key="evaluate_predicted_class").set_value(3).run()
    no_problems(app)
    assert any("correct image(s): true 3, predicted 3" in element.value for element in app.markdown)
    # The cell's pickers and images sit in the column beside the confusion table, where the learner
    # clicked, not below it.
    columns = list(app.columns)
    table_at = next(index for index, column in enumerate(columns) if column.get("dataframe"))
    beside = columns[table_at + 1]
    assert columns[table_at].weight + beside.weight == pytest.approx(1)  # One row of two columns.
    assert [box.key for box in beside.get("selectbox")] == ["evaluate_true_class", "evaluate_predicted_class"]
    assert len(beside.get("image")) == 1  # The cell's gallery.
    app.toggle(key="evaluate_cell_cam").set_value(True).run()
    app.toggle(key="evaluate_normalise").set_value(True).run()
    no_problems(app)
    shares = app.dataframe[0].value.sum(axis=1)  # Each true class's row of shares adds up to one.
    assert np.allclose(shares[shares > 0], 1.0)


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


def test_a_server_restart_opens_evaluate_from_saved_scores_without_the_model(
    home: Path, trained_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first open saves the checkpoint's test scores; after a restart (caches cleared, models
    forgotten) the page shows the same figures without predicting or loading the model."""
    import streamlit as st

    from cnnlab.trained import checkpoints, evaluation
    from cnnlab.ui.cache import run_models

    for saved in (home / "cache" / "evaluations").glob("scores_*.npz"):
        saved.unlink()  # As for a run trained before its worker saved scores.
    first = evaluate_page(trained_home[1])
    no_problems(first)
    shown = {metric.label: metric.value for metric in first.metric}
    assert list((home / "cache" / "evaluations").glob("scores_*.npz"))
    st.cache_data.clear()
    st.cache_resource.clear()
    run_models._LOADS.clear()
    loads: list[str] = []
    monkeypatch.setattr(checkpoints, "load", lambda checkpoint: loads.append(checkpoint.name))
    monkeypatch.setattr(evaluation, "predict_scores", lambda *arguments: pytest.fail("predicted again"))
    app = evaluate_page(trained_home[1])  # Its Grad-CAM waits: the model loads only once the page is shown.
    no_problems(app)
    assert any("Loading the model for Grad-CAM" in caption.value for caption in app.caption)
    assert {metric.label: metric.value for metric in app.metric} == shown
    assert loads == []
    assert app.dataframe[1].value["support"].sum() == int(shown["Images"].replace(",", ""))


@pytest.fixture(scope="module")
def unopened_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A run trained for this test alone, so no page has opened it before: (home, run id)."""
    from trained_runs import train_digits_run

    home = tmp_path_factory.mktemp("unopened_home")
    return home, train_digits_run(home)


def test_a_finished_run_opens_from_the_scores_its_worker_saved(
    unopened_run: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training ends with each checkpoint's test scores on disk (tests/test_saved_scores.py compares
    them with Keras's predictions), so the first open after a server start neither loads the model
    nor predicts."""
    import streamlit as st

    from cnnlab.trained import checkpoints, evaluation, saved_scores
    from cnnlab.ui.cache import run_models

    home, run_id = unopened_run
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    store = Store(home)
    run = store.get_run(run_id)
    found = checkpoints.models(store, run_id)
    assert [checkpoint.name for checkpoint in found] == ["best", "latest"]
    rows = {}
    for checkpoint in found:
        saved = evaluation.load_scores(saved_scores.path(home, checkpoint, "test", run.data_settings))
        assert saved is not None, checkpoint.name
        rows[checkpoint.name] = len(saved.probabilities)
    st.cache_data.clear()
    st.cache_resource.clear()
    run_models._LOADS.clear()
    loads: list[str] = []
    monkeypatch.setattr(checkpoints, "load", lambda checkpoint: loads.append(checkpoint.name))
    monkeypatch.setattr(evaluation, "predict_scores", lambda *arguments: pytest.fail("predicted on open"))
    app = evaluate_page(run_id)
    no_problems(app)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Test accuracy"] == f"{run.result('test_accuracy'):.1%}"
    assert int(metrics["Images"].replace(",", "")) == rows["best"] == rows["latest"]
    assert loads == []


def test_gallery_captions_name_truth_prediction_and_confidence(
    home: Path, trained_home: tuple[Path, str]
) -> None:
    """The mistakes are pictures with captions (page text, not 11-pixel chart titles), and their
    Grad-CAM overlays come once the model has loaded."""
    from cnnlab.trained import checkpoints
    from cnnlab.ui.cache import run_models

    app = evaluate_page(trained_home[1])
    no_problems(app)
    captions = [caption for gallery in app.get("image") for caption in gallery.captions]
    assert captions and all(caption.startswith(("✗", "✓")) and caption.endswith("%") for caption in captions)
    run_id = trained_home[1]
    [best] = [item for item in checkpoints.models(Store(home), run_id) if item.name == "best"]
    run_models.checkpoint_model(best)  # Loaded: the next run draws the overlays, with no caption waiting.
    app.run()
    no_problems(app)
    assert not any("Loading the model for Grad-CAM" in caption.value for caption in app.caption)


def test_a_diverged_run_always_has_a_checkpoint_and_says_it_is_no_model(
    trained_home: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Switching from a run with a best checkpoint to a diverged run that has only "latest" keeps a
    checkpoint selected, and the diverged run's page says plainly what it is instead of listing its
    "most confident mistakes"."""
    import shutil

    from cnnlab import specs
    from cnnlab.data import datasets
    from cnnlab.runs.views import diagnosis
    from cnnlab.store.statuses import Status
    from cnnlab.trained import checkpoints, evaluation, saved_scores
    from tests.made_runs import make_run, reached

    trained = Store(trained_home[0]).checkpoint_path(trained_home[1], "latest")
    store = Store(tmp_path)
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path))
    _, test_labels = evaluation.split_arrays(datasets.load(specs.DataSettings()), "test")
    runs = {}
    for name, status, kept in (
        ("good", Status.COMPLETED, ("best", "latest")),
        ("wild", Status.DIVERGED, ("latest",)),
    ):
        run = reached(store, make_run(store, name=name).id, Status.RUNNING)
        found = diagnosis.diverged(
            [
                diagnosis.EpochFigures(1, 30.6, learning_rate=10.0),
                diagnosis.EpochFigures(2, 7.27, learning_rate=10.0),
            ],
            diagnosis.RunFacts(10, 0.1, first_loss=2.32),
        )
        assert found is not None
        for which in kept:
            store.save_checkpoint(run.id, which, 2, lambda path: shutil.copyfile(trained, path))
            checkpoint = next(item for item in checkpoints.models(store, run.id) if item.name == which)
            # Scores as a diverged model gives them (about one class for every image), saved as the worker saves them.
            probabilities = np.full((len(test_labels), 10), 0.01, np.float32)
            probabilities[:, 3] = 0.91
            evaluation.save_scores(
                saved_scores.path(tmp_path, checkpoint, "test", run.data_settings),
                evaluation.Scores(probabilities, 0.0),
            )
        if status == Status.DIVERGED:
            store.set_status(run.id, status, reason=found.cause, hint=found.fix)
        else:
            store.set_status(run.id, status)
        runs[name] = run.id
    app = evaluate_page(runs["good"])
    no_problems(app)
    assert app.radio(key="evaluate_checkpoint").value == "best"
    assert any("most confident mistakes" in caption.value for caption in app.caption)
    app.selectbox(key="evaluate_run").set_value(runs["wild"]).run()
    assert not app.exception
    radio = app.radio(key="evaluate_checkpoint")
    assert radio.value == "latest" and len(radio.options) == 1
    (notice,) = [read_back(element.value) for element in app.error]  # The reason quoted is escaped.
    assert (
        notice.startswith("**This run diverged, so CNN Lab stopped it.**") and "not a usable model" in notice
    )
    assert "7.27 at epoch 2" in notice and "try 1 or 0.1" in notice
    assert not any("most confident mistakes" in caption.value for caption in app.caption)
    assert any("a diverged run's mistakes teach nothing" in element.value for element in app.info)

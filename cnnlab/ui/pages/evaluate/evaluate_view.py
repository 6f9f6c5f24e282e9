"""The Evaluate page's sections: the confusion matrix whose cells open their images, and the mistakes.

The page opens without TensorFlow when the checkpoint's scores are on disk (`run_models.run_evaluation`):
the images of a cell and the mistakes are drawn at once, and the model is loaded in the background
only for Grad-CAM, which is computed for the images shown (cached by model version and images).
While the model loads, the galleries show the plain images and a small fragment waits for it,
then reruns the page once with the overlays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from cnnlab.figures import inspection as inspection_figures
from cnnlab.plain_text import as_text
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import Status
from cnnlab.trained import evaluation
from cnnlab.trained.checkpoints import Checkpoint
from cnnlab.ui.cache import run_models
from cnnlab.ui.widgets import tables

TRUE_KEY, PREDICTED_KEY = "evaluate_true_class", "evaluate_predicted_class"
TABLE_KEY = "evaluate_confusion_table"
_LAST_CELL_KEY = "evaluate_last_table_cell"
CELL_LIMIT = 24
MISTAKE_LIMIT = 18
GALLERY_WIDTH = 130  # pixels a picture
CELL_GALLERY_HEIGHT = 420  # pixels: the box of a cell's images, about the confusion table's height
INDEX_WIDTH = 52  # pixels: the confusion table's column of true classes
MIN_CELL_WIDTH, MAX_CELL_WIDTH = 44, 110  # pixels: a confusion table's column
MODEL_POLL_SECONDS = 1.0
LOAD_AFTER_POLLS = 1  # A second after the page's run: time for the browser to draw it first.


def _heat_maps(
    checkpoint: Checkpoint, result: evaluation.Evaluation, indices: np.ndarray
) -> np.ndarray | None:
    """Grad-CAM of the chosen images for their predicted classes, or None while the model loads."""
    model = run_models.loaded_model(checkpoint)
    if model is None:
        return None
    from cnnlab.ui.cache import inspection_cache

    images = np.ascontiguousarray(result.images[indices])
    classes = tuple(int(value) for value in result.predicted[indices])
    return inspection_cache.grad_cams(run_models.model_key(checkpoint), model, images, classes)


@st.fragment(run_every=MODEL_POLL_SECONDS)
def _rerun_when_loaded(checkpoint: Checkpoint) -> None:
    """Poll for the model; rerun the whole page once it is there.

    The load starts a second after the page's own run, not during it: importing TensorFlow on the
    loader thread holds Python's lock and a core for seconds, which would delay sending the page to
    the browser and drawing it there.
    """
    polls_key = f"evaluate_model_polls_{run_models.model_key(checkpoint)}"
    polls = int(st.session_state.get(polls_key, 0))
    st.session_state[polls_key] = polls + 1
    if polls >= LOAD_AFTER_POLLS:
        run_models.start_loading(checkpoint)
    failure = run_models.load_failure(checkpoint)
    if failure is not None:
        st.error(f"Grad-CAM needs the model, which did not load: {as_text(failure)}", icon=":material/block:")
    elif run_models.loaded_model(checkpoint) is not None:
        st.rerun()


def load_for_overlays(checkpoint: Checkpoint, waiting: bool) -> None:
    """At the end of the page, when a gallery waits for Grad-CAM: load the model in the background
    (from the next poll on) and rerun the page when it is there."""
    if waiting:
        _rerun_when_loaded(checkpoint)


def gallery(
    checkpoint: Checkpoint, result: evaluation.Evaluation, indices: np.ndarray, with_cam: bool, key: str
) -> bool:
    """The chosen images in a grid, titled true→predicted and confidence, with Grad-CAM over them if
    asked and the model is loaded; True when the overlays wait for the model (`load_for_overlays`)."""
    if len(indices) == 0:
        st.caption("No images here.")
        return False
    titles = [as_text(evaluation.describe(result, int(index))) for index in indices]  # Captions are markdown.
    heats = _heat_maps(checkpoint, result, indices) if with_cam else None
    pictures = inspection_figures.gallery_pictures(
        [result.images[index] for index in indices], None if heats is None else list(heats)
    )
    # Plain images with captions: the browser draws dozens of them at once, where a chart per
    # picture takes seconds; the captions are the app's body text, readable at a glance.
    with st.container(key=key):
        st.image(pictures, caption=titles, width=GALLERY_WIDTH)
    waiting = with_cam and heats is None
    if waiting:
        st.caption("Loading the model for Grad-CAM: the overlays appear in a moment.")
    return waiting


def _worst_cell(result: evaluation.Evaluation) -> tuple[int, int]:
    """The off-diagonal cell with the most images (the commonest confusion), or (0, 0)."""
    off_diagonal = result.confusion * (1 - np.eye(len(result.confusion), dtype=result.confusion.dtype))
    if off_diagonal.max() == 0:
        return 0, 0
    row, column = np.unravel_index(int(off_diagonal.argmax()), off_diagonal.shape)
    return int(row), int(column)


def _apply_table_selection(event: Any, names: list[str]) -> None:
    """A newly clicked cell of the confusion table sets the two class pickers (before they are drawn)."""
    cells = list((event or {}).get("selection", {}).get("cells", []) or [])
    if not cells:
        return
    row, column = cells[-1]
    if not 0 <= int(row) < len(names) or str(column) not in names:
        return
    where = (int(row), names.index(str(column)))
    if where == st.session_state.get(_LAST_CELL_KEY):
        return
    st.session_state[_LAST_CELL_KEY] = where
    st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY] = where


def cell_width(names: list[str]) -> int:
    """The confusion table's column width in pixels: room for "100%" and the longest class name."""
    return min(MAX_CELL_WIDTH, max(MIN_CELL_WIDTH, 8 * max(len(name) for name in names) + 20))


def _confusion_columns(names: list[str]) -> dict[str, Any]:
    """Narrow columns, so ten classes fit beside the per-class table without scrolling."""
    width = cell_width(names)
    columns: dict[str, Any] = {name: st.column_config.Column(name, width=width) for name in names}
    columns["_index"] = st.column_config.Column("true ↓", width=INDEX_WIDTH)
    return columns


def confusion_section(checkpoint: Checkpoint, result: evaluation.Evaluation) -> bool:
    """The confusion table (counts or row shares) and, beside it, the images of the clicked or picked
    cell, so they appear where the learner clicked. True when their Grad-CAM waits for the model."""
    table_column, cell_column = st.columns([7, 4])  # Room for ten classes in the table at 1280 px.
    with table_column:
        _apply_table_selection(confusion_table(result), list(result.class_names))
    with cell_column:
        return cell_images(checkpoint, result)


def confusion_table(result: evaluation.Evaluation) -> Any:
    """The confusion table, its cells clickable; returns its selection event."""
    names = list(result.class_names)
    normalise = st.toggle("Normalise rows (share of each true class)", key="evaluate_normalise")
    st.markdown(
        "**Confusion matrix**: a row per true class, a column per predicted class. Click a cell to see its images."
    )
    return st.dataframe(
        tables.confusion_table(result.confusion, names, normalise),
        key=TABLE_KEY,
        on_select="rerun",
        selection_mode="single-cell",
        column_config=_confusion_columns(names),
    )


def cell_images(checkpoint: Checkpoint, result: evaluation.Evaluation) -> bool:
    """The pickers of a cell (set by a click on the table) and its images; True when their Grad-CAM
    waits for the model."""
    names = list(result.class_names)
    if TRUE_KEY not in st.session_state:
        st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY] = _worst_cell(result)
    left, right = st.columns(2)
    true_class = left.selectbox("True class", range(len(names)), key=TRUE_KEY, format_func=names.__getitem__)
    predicted_class = right.selectbox(
        "Predicted class", range(len(names)), key=PREDICTED_KEY, format_func=names.__getitem__
    )
    with_cam = st.toggle("Grad-CAM", key="evaluate_cell_cam")
    indices = evaluation.cell(result, true_class, predicted_class)
    kind = "correct" if true_class == predicted_class else "mistaken"
    st.markdown(
        f"**{len(indices)} {kind} image(s): true {as_text(names[true_class])}, predicted {as_text(names[predicted_class])}**"
        + (f" (the {CELL_LIMIT} most confident shown)" if len(indices) > CELL_LIMIT else "")
    )
    # As tall as the confusion table: the images scroll in their box, and the per-class scores below
    # the table are not pushed a screen further down.
    with st.container(height=CELL_GALLERY_HEIGHT, border=False):
        return gallery(checkpoint, result, indices[:CELL_LIMIT], with_cam, key="evaluate_cell_images")


def mistakes_section(checkpoint: Checkpoint, result: evaluation.Evaluation) -> bool:
    """The most confidently wrong predictions, with Grad-CAM: where the model looked when it erred.
    True when their Grad-CAM waits for the model."""
    wrong = evaluation.mistakes(result, MISTAKE_LIMIT)
    st.caption(
        f"{result.mistake_count} of {result.count} images are wrong; the {len(wrong)} most confident mistakes, "
        "each titled true→predicted and confidence. The overlay is Grad-CAM for the predicted class: red is "
        "where the last convolution layer found the evidence."
    )
    with_cam = st.toggle("Grad-CAM overlay", value=True, key="evaluate_mistakes_cam")
    return gallery(checkpoint, result, wrong, with_cam, key="evaluate_mistakes")


def diverged_notice(run: RunRecord, checkpoint: Checkpoint) -> bool:
    """Say plainly, above everything, that a diverged run's model is not a usable one; True if it diverged.

    CNN Lab stopped the run because its loss diverged: the weights kept (those of the last whole
    epoch) did not learn to classify, so its scores show how far off it is, not a model to study.
    """
    if run.status != Status.DIVERGED:
        return False
    why = f" {as_text(run.reason)}" if run.reason else ""
    what = f"\n\n**What to do:** {as_text(run.hint)}" if run.hint else ""
    st.error(
        f"**This run diverged, so CNN Lab stopped it.**{why} The model saved at epoch {checkpoint.epoch} "
        f"is not a usable model: the figures below show how far off it is.{what}",
        icon=":material/error:",
    )
    return True


def diverged_mistakes(result: evaluation.Evaluation) -> None:
    """Instead of a diverged run's "most confident mistakes": why there are none to study."""
    st.info(
        f"{result.mistake_count} of {result.count} images are wrong, but a diverged run's mistakes teach "
        "nothing about the images: its predictions are not a trained model's. Train again with a lower "
        "learning rate, then look at the mistakes of that run.",
        icon=":material/info:",
    )

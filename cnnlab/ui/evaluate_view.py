"""The Evaluate page's sections: the confusion matrix whose cells open their images, and the mistakes."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from cnnlab.figures import inspection as inspection_figures
from cnnlab.figures import training as training_figures
from cnnlab.figures.data import image_grid
from cnnlab.trained import evaluation
from cnnlab.trained.checkpoints import TrainedModel

TRUE_KEY, PREDICTED_KEY = "evaluate_true_class", "evaluate_predicted_class"
CHART_KEY = "evaluate_confusion_chart"
_LAST_POINT_KEY = "evaluate_last_chart_point"
CELL_LIMIT = 24
MISTAKE_LIMIT = 18


def gallery(
    model: TrainedModel, result: evaluation.Evaluation, indices: np.ndarray, with_cam: bool, key: str
) -> None:
    """The chosen images in a grid, titled true→predicted and confidence, with Grad-CAM over them if asked."""
    if len(indices) == 0:
        st.caption("No images here.")
        return
    titles = [evaluation.describe(result, int(index)) for index in indices]
    pictures = [result.images[index] for index in indices]
    if with_cam:
        heats = evaluation.explain(model, result, indices)
        figure = inspection_figures.overlay_grid(pictures, list(heats), titles, columns=6)
    else:
        figure = image_grid(pictures, titles, columns=6, size=130)
    st.plotly_chart(figure, key=key)


def _worst_cell(result: evaluation.Evaluation) -> tuple[int, int]:
    """The off-diagonal cell with the most images (the commonest confusion), or (0, 0)."""
    off_diagonal = result.confusion * (1 - np.eye(len(result.confusion), dtype=result.confusion.dtype))
    if off_diagonal.max() == 0:
        return 0, 0
    row, column = np.unravel_index(int(off_diagonal.argmax()), off_diagonal.shape)
    return int(row), int(column)


def _apply_chart_selection(event: Any, names: list[str]) -> None:
    """A newly clicked cell of the chart sets the two class pickers (before they are drawn)."""
    points = list((event or {}).get("selection", {}).get("points", []) or [])
    if not points:
        return
    point = points[-1]
    where = (str(point.get("y")), str(point.get("x")))
    if where == st.session_state.get(_LAST_POINT_KEY) or where[0] not in names or where[1] not in names:
        return
    st.session_state[_LAST_POINT_KEY] = where
    st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY] = names.index(where[0]), names.index(where[1])


def confusion_section(model: TrainedModel, result: evaluation.Evaluation) -> None:
    """The confusion matrix (counts or row shares); a clicked or picked cell shows its images."""
    names = list(result.class_names)
    normalise = st.toggle("Normalise rows (share of each true class)", key="evaluate_normalise")
    figure = training_figures.confusion_matrix(result.confusion, names, normalise)
    # Heatmap cells do not report clicks as selections; an invisible marker on each cell does.
    rows, columns = np.indices(result.confusion.shape)
    figure.add_trace(
        go.Scatter(
            x=[names[index] for index in columns.ravel()],
            y=[names[index] for index in rows.ravel()],
            customdata=result.confusion.ravel(),
            mode="markers",
            showlegend=False,
            name="cells",
            marker={"size": 26, "opacity": 0, "symbol": "square"},
            hovertemplate="true %{y}, predicted %{x}: %{customdata} image(s)<extra></extra>",
        )
    )
    figure.update_layout(clickmode="event+select", title="Confusion matrix: click a cell to see its images")
    event = st.plotly_chart(figure, key=CHART_KEY, on_select="rerun", selection_mode="points")
    _apply_chart_selection(event, names)
    if TRUE_KEY not in st.session_state:
        st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY] = _worst_cell(result)
    left, right, third = st.columns([2, 2, 1])
    true_class = left.selectbox("True class", range(len(names)), key=TRUE_KEY, format_func=names.__getitem__)
    predicted_class = right.selectbox(
        "Predicted class", range(len(names)), key=PREDICTED_KEY, format_func=names.__getitem__
    )
    with_cam = third.toggle("Grad-CAM", key="evaluate_cell_cam")
    indices = evaluation.cell(result, true_class, predicted_class)
    kind = "correct" if true_class == predicted_class else "mistaken"
    st.markdown(
        f"**{len(indices)} {kind} image(s): true {names[true_class]}, predicted {names[predicted_class]}**"
        + (f" (the {CELL_LIMIT} most confident shown)" if len(indices) > CELL_LIMIT else "")
    )
    gallery(model, result, indices[:CELL_LIMIT], with_cam, key="evaluate_cell_images")


def mistakes_section(model: TrainedModel, result: evaluation.Evaluation) -> None:
    """The most confidently wrong predictions, with Grad-CAM: where the model looked when it erred."""
    wrong = evaluation.mistakes(result, MISTAKE_LIMIT)
    st.caption(
        f"{result.mistake_count} of {result.count} images are wrong; the {len(wrong)} most confident mistakes, "
        "each titled true→predicted and confidence. The overlay is Grad-CAM for the predicted class: red is "
        "where the last convolution layer found the evidence."
    )
    with_cam = st.toggle("Grad-CAM overlay", value=True, key="evaluate_mistakes_cam")
    gallery(model, result, wrong, with_cam, key="evaluate_mistakes")

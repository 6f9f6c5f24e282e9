"""The figure of one epoch's snapshot, as the Train page and the snapshot figure route draw it.

`snapshot_figure` picks the drawing of `cnnlab.figures.training` for a snapshot's kind, so the page
(Streamlit, when a user replays an earlier epoch or the stream did not connect) and the live view
(plotly.js, fed by `cnnlab.ui.stream.routes`) show the same figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from cnnlab.figures import training

FIGURE_KINDS = ("kernels", "feature_maps", "confusion", "predictions")
"""The snapshot kinds drawn once an epoch; all but the confusion matrix need a `layer` or the panel."""


@dataclass(frozen=True)
class FigureChoice:
    """What the user picked for a snapshot's figure: a layer, a panel image, normalised rows."""

    layer: str = ""
    sample: int = 0
    normalise: bool = False


def snapshot_figure(
    kind: str,
    arrays: Mapping[str, np.ndarray],
    panel: Mapping[str, np.ndarray] | None,
    choice: FigureChoice,
) -> go.Figure:
    """The figure of snapshot `arrays` of `kind` (the run's sample `panel` for the feature maps'
    images and the predictions); KeyError for a layer, or a panel, the snapshot does not have."""
    if kind == "kernels":
        return training.kernels(arrays[choice.layer], layer=choice.layer)
    if kind == "feature_maps":
        return training.feature_maps(arrays[choice.layer][choice.sample], layer=choice.layer)
    if kind == "confusion":
        names = [str(name) for name in arrays["class_names"]]
        return training.confusion_matrix(arrays["matrix"], names, choice.normalise)
    if kind == "predictions":
        if panel is None:
            raise KeyError("panel")
        names = [str(name) for name in panel["class_names"]]
        return training.prediction_panel(panel["images"], panel["labels"], arrays["panel"], names)
    raise KeyError(kind)

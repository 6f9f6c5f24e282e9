"""Figures of the "Layer health" tab: gradient norms, dying ReLUs, weight and activation distributions.

Each figure takes the tables `cnnlab.runs.views.health` reads from a run's snapshots, and comes with a
one-line explanation a learner can read next to it, in `EXPLANATIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cnnlab.figures import axes

EXPLANATIONS = {
    "gradient_norms": (
        "How strongly each layer's weights are pushed by the loss on one fixed batch. Lines falling towards "
        "zero mean vanishing gradients (the layer stops learning); lines shooting up mean exploding "
        "gradients (the learning rate is too high)."
    ),
    "dead_units": (
        "The share of each ReLU layer's units that output zero for every validation image. A dead unit "
        "never fires, so it never learns again; more than half dead usually means the learning rate was "
        "too high at some point."
    ),
    "weights": (
        "How the weights of a layer are spread. A healthy layer keeps a smooth bump around zero that widens "
        "slowly as it learns; huge values or a spike at zero mean trouble."
    ),
    "activations": (
        "What a layer outputs for the panel images. For a ReLU layer, a tall bar at zero and nothing else "
        "means most units are silent."
    ),
}
LAYOUT = {
    "height": 300,
    "margin": {"l": 0, "r": 0, "t": 30, "b": 0},
    "legend": {"orientation": "h", "y": -0.3},
}


def gradient_norms(table: pd.DataFrame) -> go.Figure:
    """Each layer's gradient norm per epoch, on a log axis (`table`: `cnnlab.runs.views.health.layer_health`)."""
    figure = go.Figure()
    for layer, rows in table.dropna(subset=["gradient_norm"]).groupby("layer", sort=False):
        figure.add_trace(
            go.Scatter(x=rows["epoch"], y=rows["gradient_norm"], name=str(layer), mode="lines+markers")
        )
    figure.update_layout(title="Gradient norm per layer", xaxis_title="epoch", yaxis=axes.LOG_AXIS, **LAYOUT)
    return figure


def dead_units(table: pd.DataFrame) -> go.Figure:
    """Each ReLU layer's share of units that never fire on the validation images, per epoch."""
    figure = go.Figure()
    for layer, rows in table.dropna(subset=["dead_share"]).groupby("layer", sort=False):
        figure.add_trace(
            go.Scatter(x=rows["epoch"], y=rows["dead_share"], name=str(layer), mode="lines+markers")
        )
    figure.update_layout(
        title="Dead ReLU units", xaxis_title="epoch", yaxis={"range": [0, 1], "tickformat": ".0%"}, **LAYOUT
    )
    return figure


def distributions(histograms: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> go.Figure:
    """Several histograms (name to counts and bin edges) as outlines over their bin centres.

    For weights: `cnnlab.runs.views.health.weight_histograms(store, run_id, epoch)`; for activations:
    `cnnlab.runs.views.health.activation_histograms(store, run_id, epoch)`.
    """
    figure = go.Figure()
    for name, (counts, edges) in histograms.items():
        edges = np.asarray(edges, dtype=np.float64)
        centres = (edges[:-1] + edges[1:]) / 2
        figure.add_trace(
            go.Scatter(x=centres, y=np.asarray(counts), name=name, mode="lines", line={"shape": "hvh"})
        )
    figure.update_layout(title=title, xaxis_title="value", yaxis_title="count", **LAYOUT)
    return figure

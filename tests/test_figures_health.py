"""The Layer health figures, from the tables `cnnlab.runs.views.health` reads: what each draws, and that
every figure has a one-line explanation beside it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.io

from cnnlab.figures import health

TABLE = pd.DataFrame(
    {
        "epoch": [0, 0, 1, 1],
        "layer": ["conv", "dense", "conv", "dense"],
        "gradient_norm": [0.5, 0.1, 0.4, 0.01],
        "dead_share": [0.0, np.nan, 0.25, np.nan],
    }
)


def test_gradient_norms_draw_a_line_per_layer_on_a_log_axis() -> None:
    figure = health.gradient_norms(TABLE)
    assert [trace.name for trace in figure.data] == ["conv", "dense"]
    assert list(figure.data[1].y) == [0.1, 0.01] and figure.layout.yaxis.type == "log"
    # Plain numbers (0.01), not plotly's SI prefixes ("10m", "100µ").
    assert figure.layout.yaxis.tickformat == "~g" and figure.layout.yaxis.exponentformat == "e"
    json.loads(plotly.io.to_json(figure))


def test_dead_units_draw_only_the_relu_layers_as_shares() -> None:
    figure = health.dead_units(TABLE)
    assert [trace.name for trace in figure.data] == ["conv"] and list(figure.data[0].y) == [0.0, 0.25]
    assert list(figure.layout.yaxis.range) == [0, 1]
    assert health.dead_units(TABLE.iloc[:0]).data == ()


def test_distributions_draw_each_histogram_over_its_bin_centres() -> None:
    counts, edges = np.array([1, 3, 2]), np.array([0.0, 1.0, 2.0, 3.0])
    figure = health.distributions({"conv/kernel": (counts, edges)}, "Weights")
    assert list(figure.data[0].x) == [0.5, 1.5, 2.5] and list(figure.data[0].y) == [1, 3, 2]
    assert figure.layout.title.text == "Weights"


def test_every_figure_has_an_explanation_a_learner_can_read() -> None:
    assert set(health.EXPLANATIONS) == {"gradient_norms", "dead_units", "weights", "activations"}
    assert all(20 < len(text) < 300 for text in health.EXPLANATIONS.values())

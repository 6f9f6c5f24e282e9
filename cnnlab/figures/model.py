"""Figures of a model's architecture, drawn from a shape analysis (no TensorFlow)."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from cnnlab.model import catalogue, shapes

CATEGORY_COLOURS = {
    "Input": "#9e9e9e",
    "convolution": "#1f77b4",
    "pooling": "#ff7f0e",
    "normalisation": "#2ca02c",
    "regularisation": "#bcbd22",
    "reshape": "#8c564b",
    "dense": "#9467bd",
    "activation": "#e377c2",
    "augmentation": "#17becf",
    "backbone": "#d62728",
}


def architecture(analysis: shapes.Analysis) -> go.Figure:
    """Blocks left to right, one per tensor: height shows spatial size, width shows depth.

    Feature maps (height x width x channels) are drawn as boxes whose height grows with the
    spatial size and whose width grows with the number of channels (on a log scale); vectors are
    drawn as thin bars whose height grows with their length.
    """
    tensors = [("Input", "Input", tuple(analysis.spec.input_shape))]
    tensors += [
        (row.name, catalogue.layer_type(row.type).category, row.output_shape) for row in analysis.rows
    ]
    largest_side = max(shape[0] for _, _, shape in tensors if len(shape) == 3)
    largest_vector = max([shape[0] for _, _, shape in tensors if len(shape) == 1] or [1])
    figure = go.Figure()
    left = 0.0
    for name, category, shape in tensors:
        if len(shape) == 3:
            height = 0.15 + 0.85 * shape[0] / largest_side
            width = 0.2 + 0.25 * math.log2(max(shape[2], 1))
            label = f"{shape[0]}×{shape[1]}×{shape[2]}"
        else:
            height = 0.15 + 0.85 * math.log(shape[0] + 1) / math.log(largest_vector + 1)
            width = 0.3
            label = f"{shape[0]}"
        colour = CATEGORY_COLOURS.get(category, "#7f7f7f")
        figure.add_shape(
            type="rect",
            x0=left,
            x1=left + width,
            y0=-height / 2,
            y1=height / 2,
            fillcolor=colour,
            opacity=0.75,
            line={"color": colour},
        )
        figure.add_trace(
            go.Scatter(
                x=[left + width / 2],
                y=[0],
                mode="markers",
                marker={"opacity": 0, "size": 20},
                hovertemplate=f"<b>{name}</b><br>{label}<extra></extra>",
                showlegend=False,
            )
        )
        figure.add_annotation(
            x=left + width / 2,
            y=-height / 2 - 0.05,
            text=f"{name}<br>{label}",
            showarrow=False,
            yanchor="top",
            textangle=-45 if len(tensors) > 8 else 0,
            font={"size": 10},
        )
        left += width + 0.45
    figure.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 10, "b": 90},
        plot_bgcolor="white",
        xaxis={"visible": False, "range": [-0.2, left]},
        yaxis={"visible": False, "range": [-1.1, 0.6]},
    )
    return figure

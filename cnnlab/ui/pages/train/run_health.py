"""Why a run went wrong, on the Train page: the worker's diagnoses and the "Layer health" tab.

The diagnoses (diverged, not learning, overfitting, plateau) are rows the worker recorded with a
cause and a fix (`cnnlab.store.diagnoses`, made by `cnnlab.runs.views.diagnosis`); the layer health figures read the `layer_health` and
`histograms` snapshots (`cnnlab.runs.views.health`). Nothing here computes: it reads and draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from cnnlab.figures import health as health_figures
from cnnlab.plain_text import as_text_lines
from cnnlab.runs.views import diagnosis, health
from cnnlab.runs.views.diagnosis import Diagnosis
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import Status
from cnnlab.ui import server
from cnnlab.ui.session import controls


def diagnoses(run_id: str) -> list[Diagnosis]:
    """The run's diagnoses, oldest first."""
    return diagnosis.read(server.store(), run_id)


def show_diagnoses(found: Sequence[Diagnosis], status: Status) -> None:
    """One message per diagnosis: the kind and epoch, the cause, and what to do.

    A divergence that ended the run is already the run's status message, so it is not repeated.
    """
    for finding in found:
        if finding.kind == diagnosis.DIVERGED and status == Status.DIVERGED:
            continue
        show = st.error if finding.level == "error" else st.warning
        show(
            f"**{finding.title}** (epoch {finding.epoch}): {as_text_lines(finding.cause)}\n\n"
            f"**What to do:** {as_text_lines(finding.fix)}",
            icon=":material/troubleshoot:",
        )


def layer_health_tab(run: RunRecord) -> None:
    """Gradient norms, dead ReLU units, and weight and activation distributions, each explained
    (a note instead, where the run's exercise hides its layers from the viewer)."""
    if controls.layers_hidden_from_viewer(run):
        controls.say_layers_hidden()
        return
    run_id = run.id
    table = health.layer_health(server.store(), run_id)
    if table.empty:
        st.caption("Layer health appears after the first epoch.")
        return
    left, right = st.columns(2)
    with left:
        st.plotly_chart(health_figures.gradient_norms(table), key="gradient_norms_figure")
        st.caption(health_figures.EXPLANATIONS["gradient_norms"])
    with right:
        if table["dead_share"].notna().any():
            st.plotly_chart(health_figures.dead_units(table), key="dead_units_figure")
            st.caption(health_figures.EXPLANATIONS["dead_units"])
        else:
            st.caption("The model has no ReLU layer, so no unit can die.")
    epochs = sorted(int(epoch) for epoch in table["epoch"].unique())
    epoch = (
        epochs[0]
        if len(epochs) == 1
        else st.select_slider("Distributions at epoch", epochs, epochs[-1], key="health_epoch")
    )
    left, right = st.columns(2)
    recorded = server.store().snapshot_epochs(run_id, "histograms")
    weights = health.weight_histograms(server.store(), run_id, epoch) if epoch in recorded else {}
    if weights:
        left.plotly_chart(
            health_figures.distributions(weights, f"Weights at epoch {epoch}"), key="weights_figure"
        )
        left.caption(health_figures.EXPLANATIONS["weights"])
    activations = health.activation_histograms(server.store(), run_id, epoch)
    if activations:
        right.plotly_chart(
            health_figures.distributions(activations, f"Activations at epoch {epoch}"),
            key="activations_figure",
        )
        right.caption(health_figures.EXPLANATIONS["activations"])

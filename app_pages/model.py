"""Model: assemble a CNN layer by layer or from a preset; see shapes, parameters, code and JSON live."""

import dataclasses

import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.figures import model as model_figures
from cnnlab.model import codegen, presets, shapes
from cnnlab.specs import ModelSpec
from cnnlab.ui import state
from cnnlab.ui.dataset_context import dataset_context, show_dataset_line
from cnnlab.ui.layer_editor import layer_editor
from cnnlab.ui.tables import analysis_table, compact_number

st.title("Model")
setup = state.draft()
context = dataset_context(setup.data)
show_dataset_line(context)

with st.container(border=True):
    left, middle, right = st.columns([3, 2, 1])
    preset_name = left.selectbox(
        "Start from a preset",
        list(presets.PRESETS),
        key="preset_name",
        format_func=lambda name: presets.get(name).title,
    )
    left.caption(f"{presets.get(preset_name).description} *Source: {presets.get(preset_name).source}.*")
    fit = middle.checkbox(
        "Fit it to the current data",
        value=True,
        key="preset_fit",
        help="Set the input shape to the data's images and the last layer to its classes.",
    )
    right.write("")
    if right.button("Load preset", key="load_preset", type="primary"):
        preset = presets.get(preset_name)
        spec = preset.spec
        if fit and context.image_shape and context.num_classes:
            spec = presets.adapt(spec, context.image_shape, context.num_classes)
        state.set_model(spec)
        if preset.training:
            # The optimizer, learning rate, epochs and batch size its article trained it with.
            state.set_training(dataclasses.replace(state.draft().training, **preset.training))
            st.toast(f"Training settings from {preset.source}: {dict(preset.training)}")
        st.rerun()

analysis = shapes.analyse(
    setup.model,
    num_classes=context.num_classes,
    dataset_input_shape=context.image_shape,
    budget=shapes.Budget(),
)
editor_column, summary_column = st.columns([2, 3])
with editor_column:
    st.subheader("Layers")
    shape = "×".join(str(size) for size in setup.model.input_shape)
    st.caption(f"Input: {shape}")
    layer_editor(analysis)
with summary_column:
    st.subheader("Shapes and parameters")
    for problem in analysis.problems:
        st.error(problem.message, icon=":material/block:")
    st.dataframe(analysis_table(analysis), hide_index=True, width="stretch", key="analysis_table")
    totals = st.columns(4)
    totals[0].metric("Total parameters", f"{analysis.total_parameters:,}")
    totals[1].metric("Trainable", f"{analysis.trainable_parameters:,}")
    totals[2].metric("FLOPs per image", compact_number(analysis.flops))
    totals[3].metric("Activations (batch 32)", f"{analysis.activation_bytes(32) / 2**20:,.1f} MB")
    if analysis.rows:
        st.plotly_chart(model_figures.architecture(analysis), key="architecture")

code_tab, json_tab = st.tabs(["Keras code", "JSON"])
with code_tab:
    if analysis.ok:
        script = codegen.script(setup.model, setup.training, setup.data)
        st.download_button(
            "Download the script", script, f"{setup.model.name}.py", "text/x-python", key="download_code"
        )
        st.code(script, language="python")
    else:
        st.info("Fix the problems above to see the code.")
with json_tab:
    st.download_button(
        "Download JSON",
        setup.model.to_json(),
        f"{setup.model.name}.json",
        "application/json",
        key="download_json",
    )
    st.code(setup.model.to_json(), language="json")
    pasted = st.text_area("Import a model (paste its JSON)", key="import_json", height=120)
    if st.button("Import", key="import_button") and pasted.strip():
        try:
            state.set_model(ModelSpec.from_json(pasted))
            st.rerun()
        except CnnLabError as error:
            st.error(str(error))

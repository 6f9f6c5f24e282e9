"""Model: assemble a CNN layer by layer or from a preset; see shapes, parameters, code and JSON live."""

import streamlit as st

from cnnlab.figures import model as model_figures
from cnnlab.model import codegen, pretrained_weights, shapes
from cnnlab.plain_text import as_text_lines
from cnnlab.ui.pages.model.layer_editor import layer_editor
from cnnlab.ui.pages.model.model_import import import_box
from cnnlab.ui.pages.model.preset_panel import preset_panel
from cnnlab.ui.session import controls, state
from cnnlab.ui.widgets.dataset_context import dataset_context, show_dataset_line
from cnnlab.ui.widgets.tables import ANALYSIS_COLUMNS, analysis_table

st.title("Model")
setup = state.draft()
state.show_entry_notes()
context = dataset_context(setup.data)
show_dataset_line(context)

model_locked = controls.locked("model_layers")
model_hidden = controls.hidden("model_layers")
if not model_locked:
    preset_panel(context)

analysis = shapes.analyse(
    setup.model,
    num_classes=context.num_classes,
    dataset_input_shape=context.image_shape,
    budget=shapes.Budget(),
)
editor_column, summary_column = st.columns([2, 3])
with editor_column:
    st.subheader("Layers")
    if model_hidden:
        controls.say_layers_hidden()
    elif model_locked:
        st.info("The exercise fixes the model's layers: look, train, compare.", icon=":material/lock:")
    else:
        layer_editor(analysis, context.image_shape)
with summary_column:
    st.subheader("Shapes and parameters")
    for problem in analysis.problems:
        st.error(as_text_lines(problem.message), icon=":material/block:")
    for missing in pretrained_weights.missing(setup.model):
        st.warning(as_text_lines(missing.message), icon=":material/cloud_off:")
    # Two by two: four side by side cut their numbers short ("151,...") on a 1280-pixel screen.
    totals = [*st.columns(2), *st.columns(2)]
    totals[0].metric("Total parameters", f"{analysis.total_parameters:,}")
    totals[1].metric("Trainable", f"{analysis.trainable_parameters:,}")
    totals[2].metric("FLOPs per image", analysis.flops, format="compact")
    totals[3].metric("Activations (batch 32)", f"{analysis.activation_bytes(32) / 2**20:,.1f} MB")
    if analysis.rows and not model_hidden:
        st.plotly_chart(model_figures.architecture(analysis), key="architecture")

# Below both columns, at the page's full width: every column of the layer table fits a 1280-pixel screen.
if not model_hidden:
    st.dataframe(
        analysis_table(analysis),
        hide_index=True,
        width="stretch",
        key="analysis_table",
        column_config=ANALYSIS_COLUMNS,
    )

# Keyed, so the open tab stays open when an import reruns the page.
code_tab, json_tab = st.tabs(["Keras code", "JSON"], key="model_code_tabs")
with code_tab:
    if controls.hides_anything():
        # The script writes out every setting: the layers, the data and the training alike.
        st.info(
            "The exercise hides some of its settings, so its Keras code is not shown.",
            icon=":material/visibility_off:",
        )
    elif analysis.ok:
        script = codegen.script(setup.model, setup.training, setup.data)
        st.download_button(
            "Download the script",
            script,
            codegen.download_name(setup.model, ".py"),
            "text/x-python",
            key="download_code",
        )
        st.code(script, language="python")
    else:
        st.info("Fix the problems above to see the code.")
with json_tab:
    if model_hidden:
        controls.say_layers_hidden()
    else:
        st.download_button(
            "Download JSON",
            setup.model.to_json(),
            codegen.download_name(setup.model, ".json"),
            "application/json",
            key="download_json",
        )
        import_box(model_locked)  # Above the long listing, so its result shows where the learner clicked.
        st.code(setup.model.to_json(), language="json")

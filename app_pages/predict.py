"""Predict: try a trained model on your own images and see what it sees and where it looks."""

import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.ui.pages.predict import predict_view

st.title("Predict")
st.caption(
    "Upload images, take a photo or draw a digit; see each preprocessing step, the top classes, "
    "Grad-CAM, saliency and the feature maps."
)

source = st.segmented_control(
    "Model", ["A trained run", "A model file"], default="A trained run", key="predict_source"
)
if source == "A model file":
    choice = predict_view.uploaded_model_choice()
    if choice is None:
        st.stop()
else:
    choice = predict_view.run_model_choice()
    predict_view.model_download(choice)

shape = "×".join(str(size) for size in choice.info.image_shape)
st.caption(
    f"The model takes {shape} images of {len(choice.info.class_names)} classes; "
    f"new images are prepared like {choice.info.title}."
)
attempts = predict_view.collect_attempts(choice.info)
prepared = predict_view.prepare(attempts, choice.info)
if not prepared:
    st.info("Add an image above to see the model's prediction.", icon=":material/add_photo_alternate:")
    st.stop()

try:
    results = predict_view.predictions(choice, prepared)
except CnnLabError as error:
    st.error(str(error))
    st.stop()

table = predict_view.predictions_table(results)
st.dataframe(
    table,
    hide_index=True,
    key="predict_table",
    column_config={
        "confidence": st.column_config.ProgressColumn(
            "confidence", format="percent", min_value=0.0, max_value=1.0
        )
    },
)
position = 0
if len(results) > 1:
    position = st.selectbox(
        "Explain image",
        range(len(results)),
        key="predict_chosen",
        format_func=lambda index: f"{results[index].name}: {results[index].class_name}",
    )
result = results[position]
predict_view.answer(result)
try:
    predict_view.explain(choice, result.prepared, result.probabilities)
except CnnLabError as error:
    st.error(str(error))
st.subheader("Probes")
predict_view.probe_controls(result.prepared, result.name)

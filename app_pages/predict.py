"""Predict: try a trained model on your own images and see what it sees and where it looks."""

import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.ui.pages.predict import predict_view

st.title("Predict")
st.caption(
    "Upload images, take a photo or draw a digit; see each preprocessing step, the top classes, "
    "Grad-CAM, saliency and the feature maps."
)

source = st.segmented_control(
    "Model",
    ["A trained run", "A model file"],
    default="A trained run",
    key="predict_source",
    on_change=predict_view.forget_inputs,  # Another model: the old images and answers go.
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
    f"new images are prepared like {as_text(choice.info.title)}."
)
attempts = predict_view.collect_attempts(choice.info)
prepared = predict_view.prepare(attempts, choice.info)
if not prepared:
    st.info("Add an image above to see the model's prediction.", icon=":material/add_photo_alternate:")
    st.stop()

try:
    results = predict_view.predictions(choice, prepared)
except CnnLabError as error:
    st.error(as_text_lines(error))
    st.stop()

st.dataframe(
    predict_view.predictions_table(results, choice.info),
    hide_index=True,
    key="predict_table",
    column_config={
        "confidence": st.column_config.ProgressColumn(
            "confidence",
            format="percent",
            min_value=0.0,
            max_value=1.0,
            help="Empty when the image looks unlike the training data: a guess is not a certainty.",
        )
    },
)
result = predict_view.choose_result(results)
predict_view.answer(result)
try:
    predict_view.explain(
        choice, result.prepared, result.probabilities, trusted=result.out_of_distribution is None
    )
except CnnLabError as error:
    st.error(as_text_lines(error))
st.subheader("Probes")
predict_view.probe_controls(result.prepared, result.name)

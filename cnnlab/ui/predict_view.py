"""The Predict page's pieces: where the model comes from, the images to try, and one image explained."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from cnnlab.data import decode
from cnnlab.data.info import DatasetInfo
from cnnlab.data.prepare import PreparedImage, prepare_for_model
from cnnlab.errors import CnnLabError
from cnnlab.figures import inspection as inspection_figures
from cnnlab.figures import training as training_figures
from cnnlab.figures.data import image_grid
from cnnlab.runs import probes, telemetry
from cnnlab.trained import inspection, layers
from cnnlab.trained.checkpoints import Checkpoint, TrainedModel
from cnnlab.ui import run_models, server

DRAWING_SIZE = 16


@dataclass(frozen=True)
class ModelChoice:
    """The model to predict with, what its images are, and its file when it is a run's checkpoint."""

    model: TrainedModel
    info: DatasetInfo
    title: str
    run_id: str | None = None
    checkpoint: Checkpoint | None = None


@dataclass(frozen=True)
class Attempt:
    """One image to predict: its name and its decoded pixels (a PIL image or an array)."""

    name: str
    image: object


def uploaded_model_choice() -> ModelChoice | None:
    """A user's `.keras` file, checked and loaded in safe mode; the refusal's reason when it is refused."""
    upload = st.file_uploader("A Keras model file (.keras)", key="predict_model_file")
    if upload is None:
        st.caption(
            "Only the .keras format is accepted. It is checked first and loaded in Keras safe mode: "
            "a model with a Lambda layer or custom code is refused, nothing in it is run."
        )
        return None
    try:
        model = run_models.uploaded_model(upload.getvalue())
    except CnnLabError as error:
        st.error(f"{upload.name}: {error}", icon=":material/gpp_bad:")
        return None
    try:
        shape = layers.summary(model)
    except CnnLabError as error:
        st.error(f"{upload.name}: {error}", icon=":material/gpp_bad:")
        return None
    height, width, channels = shape.input_shape
    count = max(shape.outputs, 2)
    names = st.text_input(
        "Class names, comma separated",
        ",".join(str(index) for index in range(count)),
        key="predict_model_classes",
    ).split(",")
    names = [name.strip() for name in names] + [str(index) for index in range(len(names), count)]
    digit_like = st.toggle("Light ink on a dark background (like MNIST)", key="predict_model_digit_like")
    info = DatasetInfo(
        name="uploaded",
        title=upload.name,
        description="A model file supplied by the user.",
        image_shape=(height, width, channels),
        class_names=tuple(names[:count]),
        size=0,
        source="uploaded",
        licence="",
        available=True,
        unavailable_reason=None,
        digit_like=digit_like,
    )
    st.caption(
        f"Loaded {upload.name}: input {height}×{width}×{channels}, {count} classes, "
        f"{shape.parameters:,} parameters."
    )
    return ModelChoice(model, info, upload.name)


def run_model_choice() -> ModelChoice:
    """A trained run and its checkpoint (stops the page when there is none)."""
    run = run_models.choose_run("predict_run")
    checkpoint = run_models.choose_checkpoint(run, "predict_checkpoint")
    try:
        model = run_models.checkpoint_model(checkpoint)
        info = run_models.run_dataset_info(run)
    except CnnLabError as error:
        st.error(str(error), icon=":material/block:")
        st.stop()
    return ModelChoice(model, info, run.name, run.id, checkpoint)


def model_download(choice: ModelChoice) -> None:
    """A download button for the chosen run's checkpoint file (nothing for a user's own file)."""
    if choice.checkpoint is None:
        return
    st.download_button(
        "Download this model (.keras)",
        run_models.checkpoint_bytes(choice.checkpoint),
        file_name=f"{choice.run_id}_{choice.checkpoint.name}.keras",
        mime="application/zip",
        key="predict_model_download",
        icon=":material/download:",
        on_click="ignore",
    )


def _drawing(info: DatasetInfo) -> list[Attempt]:
    if not info.digit_like:
        st.caption(
            f"Drawing is for digit-like data (light ink on dark); {info.title} is not. Upload a photo."
        )
        return []
    st.caption("Tick the cells of your digit: the ink is white on black, like the training images.")
    columns = [str(index) for index in range(DRAWING_SIZE)]
    blank = pd.DataFrame(False, index=range(DRAWING_SIZE), columns=columns)
    config = {name: st.column_config.CheckboxColumn(" ", width=28) for name in columns}
    grid = st.data_editor(blank, key="predict_drawing", column_config=config, hide_index=True)
    pixels = np.asarray(grid, dtype=np.float32)
    return [Attempt("drawing", pixels)] if pixels.any() else []


def collect_attempts(info: DatasetInfo) -> list[Attempt]:
    """Images from uploads, the camera and the drawing grid; every undecodable one gets its own message."""
    upload_tab, camera_tab, draw_tab = st.tabs(["Upload", "Camera", "Draw"], key="predict_input_tabs")
    attempts: list[tuple[str, bytes]] = []
    with upload_tab:
        files = st.file_uploader(
            "Images (PNG, JPEG, GIF, BMP or WebP)", accept_multiple_files=True, key="predict_uploads"
        )
        attempts += [(file.name, file.getvalue()) for file in files or []]
    with camera_tab:
        photo = st.camera_input("Take a photo", key="predict_camera")
        if photo is not None:
            attempts.append(("camera photo", photo.getvalue()))
    with draw_tab:
        drawn = _drawing(info)
    decoded: list[Attempt] = []
    for name, data in attempts:
        try:
            decoded.append(Attempt(name, decode.decode_image(data, draft_size=(512, 512))))
        except CnnLabError as error:
            st.error(f"{name}: {error}", icon=":material/broken_image:")
    return decoded + drawn


def prepare(attempts: list[Attempt], info: DatasetInfo) -> list[tuple[Attempt, PreparedImage]]:
    """Each image preprocessed like the training data; an image that cannot be prepared gets its message."""
    prepared = []
    for attempt in attempts:
        try:
            prepared.append((attempt, prepare_for_model(attempt.image, info)))  # type: ignore[arg-type]
        except CnnLabError as error:
            st.error(f"{attempt.name}: {error}", icon=":material/broken_image:")
    return prepared


def predictions_table(
    names: list[str], probabilities: np.ndarray, class_names: tuple[str, ...]
) -> pd.DataFrame:
    """One row per image: its name, the predicted class and the confidence."""
    full = probabilities if probabilities.shape[-1] > 1 else np.hstack([1 - probabilities, probabilities])
    best = full.argmax(axis=1)
    return pd.DataFrame(
        {"image": names, "prediction": [class_names[index] for index in best], "confidence": full.max(axis=1)}
    )


def explain(choice: ModelChoice, prepared: PreparedImage, probabilities: np.ndarray) -> None:
    """Preprocessing steps, top-k, Grad-CAM and saliency, and the feature maps of one image."""
    st.markdown("**What the model sees**: each preprocessing step, in order")
    st.plotly_chart(inspection_figures.preprocessing_steps(prepared.steps), key="predict_steps")
    left, right = st.columns([1, 2])
    with left:
        count = max(2, len(choice.info.class_names))
        k = st.slider("Top classes", 1, count, min(5, count), key="predict_top_k")
        st.plotly_chart(
            inspection_figures.top_k(probabilities, choice.info.class_names, k), key="predict_top"
        )
    with right:
        layers = inspection.feature_layers(choice.model)
        if not layers:
            st.caption("The model has no convolution layer, so there is no Grad-CAM or feature map to show.")
            return
        default = layers.index(inspection.last_convolution(choice.model))
        layer = st.selectbox("Grad-CAM layer", layers, index=default, key="predict_cam_layer")
        # The class is already known from the prediction: no extra forward pass to find it.
        predicted = telemetry.predicted_classes(np.asarray(probabilities)[np.newaxis])
        cam = inspection.grad_cam(choice.model, prepared.array, classes=predicted, layer_name=layer)[0]
        salient = inspection.saliency(choice.model, prepared.array, classes=predicted)[0]
        st.plotly_chart(
            inspection_figures.explanation(prepared.array, cam, salient), key="predict_explanation"
        )
    st.markdown("**Feature maps** of this image, layer by layer")
    maps = inspection.feature_maps(choice.model, prepared.array)
    chosen = st.selectbox(
        "Layer",
        list(maps),
        key="predict_map_layer",
        format_func=lambda name: f"{name} ({'×'.join(str(size) for size in maps[name].shape)})",
    )
    st.plotly_chart(training_figures.feature_maps(maps[chosen], limit=32, layer=chosen), key="predict_maps")


def probe_controls(prepared: PreparedImage, name: str) -> None:
    """Pin this image as a probe for new runs, and show (and unpin) the pinned ones."""
    store = server.store()
    if st.button("Pin as a probe for new runs", key="predict_pin", icon=":material/push_pin:"):
        try:
            count = probes.pin(store, prepared.array)
            st.toast(
                f"Pinned {name}: {count} probe(s). Runs started from now show it live on the Train page."
            )
        except CnnLabError as error:
            st.error(str(error))
    pinned = probes.pinned(store)
    if not pinned:
        st.caption("No probes pinned. A pinned image is followed live, epoch by epoch, by every new run.")
        return
    st.caption(f"{len(pinned)} pinned probe(s), followed by runs started after pinning:")
    st.plotly_chart(
        image_grid(pinned, [f"probe {index + 1}" for index in range(len(pinned))], columns=8, size=90),
        key="predict_probes",
    )
    remove = st.selectbox(
        "Unpin",
        range(len(pinned)),
        key="predict_unpin_choice",
        format_func=lambda index: f"probe {index + 1}",
    )
    if st.button("Unpin", key="predict_unpin"):
        probes.unpin(store, int(remove))
        st.rerun()

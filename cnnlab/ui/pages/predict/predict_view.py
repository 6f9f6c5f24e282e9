"""The Predict page's pieces: where the model comes from, the images to try, and one image explained."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from cnnlab.data.info import DatasetInfo
from cnnlab.data.prepare import PreparedImage, prepare_for_model
from cnnlab.errors import CnnLabError
from cnnlab.figures import inspection as inspection_figures
from cnnlab.figures import training as training_figures
from cnnlab.figures.data import image_grid
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.store import probes
from cnnlab.store.records import RunRecord
from cnnlab.trained import classification, layers, prediction
from cnnlab.trained.calibration import Calibration
from cnnlab.trained.checkpoints import Checkpoint, TrainedModel
from cnnlab.ui import server
from cnnlab.ui.cache import inspection_cache, run_models
from cnnlab.ui.pages.predict import drawing
from cnnlab.ui.session import controls
from cnnlab.ui.widgets import run_owner

TOP_K = 5
GENERATION = "predict_inputs_generation"  # raised when the model source changes: new, empty inputs
SEEN, CHOSEN = "predict_seen", "predict_chosen_image"  # the inputs already shown, the one explained


def input_key(name: str) -> str:
    """The key of an input widget (uploader, camera, canvas) in the current generation of inputs."""
    generation = int(st.session_state.get(GENERATION, 0))
    return name if generation == 0 else f"{name}_{generation}"


def forget_inputs() -> None:
    """Start again with empty inputs and no results (when the model source changes): the input
    widgets get new keys, so the browser drops the old files, photo and drawing."""
    st.session_state[GENERATION] = int(st.session_state.get(GENERATION, 0)) + 1
    for key in (SEEN, CHOSEN, "predict_chosen"):
        st.session_state.pop(key, None)


@dataclass(frozen=True)
class ModelChoice:
    """The model to predict with, its version's name (for the caches), what its images are, and its
    file when it is a run's checkpoint."""

    model: TrainedModel
    key: str
    info: DatasetInfo
    title: str
    run: RunRecord | None = None
    checkpoint: Checkpoint | None = None
    calibration: Calibration | None = None  # thresholds of the out-of-distribution hint, if measured


@dataclass(frozen=True)
class Attempt:
    """One image to predict: its name and its decoded pixels (a PIL image or an array)."""

    name: str
    image: object


# How a model file from elsewhere wants its images: the user says (the file cannot).
STYLES: dict[str, tuple[str, bool]] = {
    "Digits 8x8 style: ink fills its box": ("digits", True),
    "MNIST style: 20x20 box in 28x28": ("mnist", True),
    "Photos: no ink centring": ("photos", False),
}


def _default_style(height: int, width: int, channels: int) -> int:
    """The style a model's input suggests: 8x8 grey is the digits, 28x28 grey is MNIST, else photos."""
    if channels == 1 and (height, width) == (8, 8):
        return 0
    return 1 if channels == 1 and (height, width) == (28, 28) else 2


def chosen_preprocessing(
    data: bytes, file_name: str, input_shape: tuple[int, int, int], count: int
) -> tuple[DatasetInfo, Calibration | None]:
    """How the model file's images are prepared: read from the file when CNN Lab made it (what it
    was trained on, its classes and calibration), else chosen by the user with a selector."""
    from cnnlab.trained import model_files

    trained_on, calibration = model_files.training_data(data)
    if trained_on is not None and trained_on.image_shape == input_shape:
        shape = "×".join(str(size) for size in trained_on.image_shape)
        st.success(
            f"Preprocessing as trained: {as_text(trained_on.title)}, {shape}", icon=":material/verified:"
        )
        return trained_on, calibration
    if trained_on is not None:
        st.warning(
            f"The file says it was trained on {trained_on.image_shape} images but takes {input_shape}; "
            "choose its preprocessing below."
        )
    height, width, channels = input_shape
    style = st.radio(
        "Preprocessing (the file does not say what it was trained on)",
        list(STYLES),
        index=_default_style(height, width, channels),
        key="predict_model_style",
        help="Digit styles invert a light background, find the ink and place it like the training set; "
        "photos are only resized.",
    )
    names = st.text_input(
        "Class names, comma separated",
        ",".join(str(index) for index in range(count)),
        key="predict_model_classes",
    ).split(",")
    names = [name.strip() for name in names] + [str(index) for index in range(len(names), count)]
    dataset, digit_like = STYLES[style]
    info = DatasetInfo(
        name=dataset,
        title=f"{file_name} ({style.split(':')[0]})",
        description="A model file supplied by the user.",
        image_shape=input_shape,
        class_names=tuple(names[:count]),
        size=0,
        source="uploaded",
        licence="",
        available=True,
        unavailable_reason=None,
        digit_like=digit_like,
    )
    return info, None


def uploaded_model_choice() -> ModelChoice | None:
    """A user's `.keras` file, checked and loaded in safe mode; the refusal's reason when it is refused."""
    upload = st.file_uploader("A Keras model file (.keras)", key="predict_model_file")
    if upload is None:
        st.caption(
            "Only the .keras format is accepted. It is checked first and loaded in Keras safe mode: "
            "a model with a Lambda layer or custom code is refused, nothing in it is run."
        )
        return None
    data = upload.getvalue()
    try:
        model = run_models.uploaded_model(data)
        shape = layers.summary(model)
    except CnnLabError as error:
        st.error(f"{as_text(upload.name)}: {as_text(error)}", icon=":material/gpp_bad:")
        return None
    height, width, channels = shape.input_shape
    count = max(shape.outputs, 2)
    info, calibration = chosen_preprocessing(data, upload.name, (height, width, channels), count)
    st.caption(
        f"Loaded {as_text(upload.name)}: input {height}×{width}×{channels}, {count} classes, "
        f"{shape.parameters:,} parameters."
    )
    return ModelChoice(model, run_models.uploaded_model_key(data), info, upload.name, calibration=calibration)


def run_model_choice() -> ModelChoice:
    """A trained run and its checkpoint (stops the page when there is none)."""
    run = run_models.choose_run("predict_run")
    run_owner.say_whose(run)
    checkpoint = run_models.choose_checkpoint(run, "predict_checkpoint")
    try:
        model = run_models.checkpoint_model(checkpoint)
        info = run_models.run_dataset_info(run)
        calibration = run_models.run_calibration(run, checkpoint)
    except CnnLabError as error:
        st.error(as_text_lines(error), icon=":material/block:")
        st.stop()
    return ModelChoice(model, run_models.model_key(checkpoint), info, run.name, run, checkpoint, calibration)


def model_download(choice: ModelChoice) -> None:
    """A download button for the chosen run's checkpoint file (nothing for a user's own file)."""
    if choice.checkpoint is None or choice.run is None:
        return
    if controls.layers_hidden_from_viewer(choice.run):
        return  # The file holds the layers the exercise hides.
    st.download_button(
        "Download this model (.keras)",
        functools.partial(run_models.checkpoint_bytes, choice.run, choice.checkpoint, choice.calibration),
        file_name=f"{choice.run.id}_{choice.checkpoint.name}.keras",
        mime="application/zip",
        key="predict_model_download",
        icon=":material/download:",
        on_click="ignore",
    )


def _drawing(info: DatasetInfo) -> list[Attempt]:
    if not info.digit_like:
        st.caption(
            f"Drawing is for digit-like data (light ink on dark); {as_text(info.title)} is not. Upload a photo."
        )
        return []
    image = drawing.canvas_image(min(info.image_shape[:2]), key=input_key("predict_canvas"))
    return [Attempt("drawing", image)] if image is not None else []


def collect_attempts(info: DatasetInfo) -> list[Attempt]:
    """Images from uploads, the camera and the drawing canvas; every undecodable one gets its own message."""
    upload_tab, camera_tab, draw_tab = st.tabs(["Upload", "Camera", "Draw"], key="predict_input_tabs")
    attempts: list[tuple[str, bytes]] = []
    with upload_tab:
        files = st.file_uploader(
            "Images (PNG, JPEG, GIF, BMP or WebP)",
            accept_multiple_files=True,
            key=input_key("predict_uploads"),
        )
        attempts += [(file.name, file.getvalue()) for file in files or []]
    with camera_tab:
        photo = st.camera_input("Take a photo", key=input_key("predict_camera"))
        if photo is not None:
            attempts.append(("camera photo", photo.getvalue()))
    with draw_tab:
        drawn = _drawing(info)
    decoded: list[Attempt] = []
    for name, data in attempts:
        try:
            decoded.append(Attempt(name, prediction.decode(data)))
        except CnnLabError as error:
            st.error(f"{as_text(name)}: {as_text(error)}", icon=":material/broken_image:")
    return decoded + drawn


def prepare(attempts: list[Attempt], info: DatasetInfo) -> list[tuple[Attempt, PreparedImage]]:
    """Each image preprocessed like the training data; an image that cannot be prepared gets its message."""
    prepared = []
    for attempt in attempts:
        try:
            prepared.append((attempt, prepare_for_model(attempt.image, info)))  # type: ignore[arg-type]
        except CnnLabError as error:
            st.error(f"{as_text(attempt.name)}: {as_text(error)}", icon=":material/broken_image:")
    return prepared


def predictions(
    choice: ModelChoice, prepared: list[tuple[Attempt, PreparedImage]]
) -> list[prediction.Prediction]:
    """The prediction of each prepared image (`cnnlab.trained.prediction`, as the CLI makes it), with
    its out-of-distribution hint; cached by model version and image content."""
    items = [item for _, item in prepared]
    # The key names the model, how its answers are labelled and flagged, and the images.
    labelled = f"{choice.key}|{choice.info.name}|{','.join(choice.info.class_names)}|{choice.calibration is not None}"
    key = inspection_cache.images_key(labelled, items)
    names = tuple(attempt.name for attempt, _ in prepared)
    return inspection_cache.predictions(
        key, choice.model, tuple(items), choice.info, choice.calibration, names, TOP_K
    )


def _check(result: prediction.Prediction, info: DatasetInfo) -> str:
    if result.out_of_distribution is not None:
        return "unlike a digit" if _digits(info) else "unlike the training images"
    return "unsure" if result.unsure is not None else "looks fine"


def _digits(info: DatasetInfo) -> bool:
    return info.digit_like and list(info.class_names) == [str(digit) for digit in range(10)]


def predictions_table(results: list[prediction.Prediction], info: DatasetInfo) -> pd.DataFrame:
    """One row per image: its name, the predicted class (a guess, with no confidence bar, when the
    image looks unlike the training data) and a short check; the reasons are said as text below."""
    return pd.DataFrame(
        {
            "image": [result.name for result in results],
            "prediction": [_answer_word(result) for result in results],
            "confidence": [None if result.out_of_distribution else result.probability for result in results],
            "check": [_check(result, info) for result in results],
        }
    )


def _signature(result: prediction.Prediction) -> str:
    """What one input is: its name and its decoded pixels."""
    decoded = np.ascontiguousarray(result.prepared.steps[0][1])
    return f"{result.name}|{hashlib.sha1(decoded.tobytes()).hexdigest()}|{decoded.shape}"


def newest_position(results: list[prediction.Prediction]) -> int:
    """The image to explain: the first input not seen on the previous run of the page (a new upload,
    photo or drawing), else the one explained before (wherever it now is in the list), else the first."""
    signatures = [_signature(result) for result in results]
    seen = set(st.session_state.get(SEEN, ()))
    fresh = [position for position, signature in enumerate(signatures) if signature not in seen]
    chosen = st.session_state.get(CHOSEN)
    if fresh:
        position = fresh[0]
    elif chosen in signatures:
        position = signatures.index(chosen)
    else:
        position = 0
    st.session_state[SEEN] = signatures
    st.session_state[CHOSEN] = signatures[position]
    return position


def choose_result(results: list[prediction.Prediction]) -> prediction.Prediction:
    """The result to explain: the newest input, or the one the learner picks from the list."""
    position = newest_position(results)
    if len(results) == 1:
        return results[0]
    st.session_state["predict_chosen"] = position
    picked = st.selectbox(
        "Explain image",
        range(len(results)),
        key="predict_chosen",
        format_func=lambda index: f"{results[index].name}: {_answer_word(results[index])}",
        on_change=_remember_choice,
        args=(results,),
    )
    return results[int(picked)]


def _answer_word(result: prediction.Prediction) -> str:
    """The class as the table says it: a guess when the image looks unlike the training data."""
    return f"guess: {result.class_name}" if result.out_of_distribution else result.class_name


def _remember_choice(results: list[prediction.Prediction]) -> None:
    picked = int(st.session_state["predict_chosen"])
    if 0 <= picked < len(results):
        st.session_state[CHOSEN] = _signature(results[picked])


def answer(result: prediction.Prediction) -> None:
    """The answer for one image, said honestly: the warning first when the image looks unlike the
    training data (why in plain words, the measurements one click away), the note when the model
    is unsure."""
    st.subheader(f"{as_text(result.name)}: {as_text(result.headline())}")
    if result.out_of_distribution:
        why = "; ".join(result.reasons)
        st.warning(
            f"{result.out_of_distribution} Why: {why[:1].upper() + why[1:]}. A model always names one of "
            f"the classes it knows, so its {result.probability:.0%} for {as_text(result.class_name)} is not a "
            "certainty here.",
            icon=":material/help:",
        )
        with st.expander("How this was decided"):
            st.markdown("\n".join(f"- {detail}" for detail in result.details))
            st.caption(f"The model's top probability: {result.probability:.2%}.")
    elif result.unsure:
        st.info(as_text_lines(result.unsure), icon=":material/help:")


def explain(
    choice: ModelChoice, prepared: PreparedImage, probabilities: np.ndarray, trusted: bool = True
) -> None:
    """Preprocessing steps, top-k, Grad-CAM and saliency, and the feature maps of one image.

    When the image looks unlike the training data (`trusted` False) the class probabilities are
    folded away behind a note, not shown as a certainty. Everything computed with the model is cached by the model's version, the image and the layer,
    so moving a slider or picking another layer reruns no TensorFlow for an image already seen.
    """
    layers_hidden = choice.run is not None and controls.layers_hidden_from_viewer(choice.run)
    st.markdown("**What the model sees**: each preprocessing step, in order")
    st.plotly_chart(inspection_figures.preprocessing_steps(prepared.steps), key="predict_steps")
    left, right = st.columns([1, 2])
    with left:
        count = max(2, len(choice.info.class_names))
        holder = st.container() if trusted else st.expander("The model's scores (not a certainty here)")
        with holder:
            k = st.slider("Top classes", 1, count, min(5, count), key="predict_top_k")
            st.plotly_chart(
                inspection_figures.top_k(probabilities, choice.info.class_names, k), key="predict_top"
            )
    with right:
        layers, default = inspection_cache.feature_layers(choice.key, choice.model)
        if not layers or default is None:
            st.caption("The model has no convolution layer, so there is no Grad-CAM or feature map to show.")
            return
        layer = (
            default  # The default layer, unnamed: the run's exercise hides its layers.
            if layers_hidden
            else st.selectbox("Grad-CAM layer", layers, index=layers.index(default), key="predict_cam_layer")
        )
        # The class is already known from the prediction: no extra forward pass to find it.
        predicted = int(classification.predicted_classes(np.asarray(probabilities).reshape(1, -1))[0])
        cam, salient = inspection_cache.grad_cam_and_saliency(
            choice.key, choice.model, prepared.array, predicted, layer
        )
        st.plotly_chart(
            inspection_figures.explanation(prepared.array, cam, salient), key="predict_explanation"
        )
    st.markdown("**Feature maps** of this image, layer by layer")
    if layers_hidden:
        controls.say_layers_hidden()
        return
    maps = inspection_cache.feature_maps(choice.key, choice.model, prepared.array)
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
                f"Pinned {as_text(name)}: {count} probe(s). Runs started from now show it live on the Train page."
            )
        except CnnLabError as error:
            st.error(as_text_lines(error))
    pinned = probes.pinned(store)
    if (problem := probes.unreadable(store)) is not None:
        st.warning(as_text_lines(problem))
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

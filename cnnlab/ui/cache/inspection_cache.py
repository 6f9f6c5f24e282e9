"""What the pages compute with a model, cached: predictions, Grad-CAM, saliency and feature maps.

Every function takes a `model_key` naming the model's version (a checkpoint's path and
modification time, or a model file's content hash: `run_models.model_key`) and the model itself,
which Streamlit does not hash (its argument starts with an underscore). The images are hashed by
content, so a rerun for a display widget (the top-k slider, a layer picker, a toggle) finds the
arrays of an image it has already seen and runs nothing in TensorFlow. The results are shared by
every session and must not be changed in place.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from cnnlab.data.info import DatasetInfo
from cnnlab.data.prepare import PreparedImage
from cnnlab.trained import inspection, prediction
from cnnlab.trained.calibration import Calibration
from cnnlab.trained.checkpoints import TrainedModel

ENTRIES = 256


@st.cache_resource(max_entries=ENTRIES, show_spinner=False)
def probabilities(model_key: str, _model: TrainedModel, images: np.ndarray) -> np.ndarray:
    """The class probabilities of a batch of prepared images (`inspection.predict`)."""
    return inspection.predict(_model, images)


@st.cache_resource(max_entries=ENTRIES, show_spinner=False)
def predictions(
    key: str,
    _model: TrainedModel,
    _prepared: tuple[PreparedImage, ...],
    _info: DatasetInfo,
    _calibration: Calibration | None,
    names: tuple[str, ...],
    top_k: int,
) -> list[prediction.Prediction]:
    """`prediction.classify` of prepared images; `key` names the model version and the images
    (`images_key`), the one prediction Predict, the CLI and model files share."""
    return prediction.classify(_model, _prepared, _info, _calibration, names=names, top_k=top_k)


def images_key(model_key: str, prepared: list[PreparedImage]) -> str:
    """A name for a model version and a batch of prepared images: the images' content hashes."""
    digests = [
        hashlib.sha256(np.ascontiguousarray(item.array).tobytes()).hexdigest()[:16] for item in prepared
    ]
    return f"{model_key}|{','.join(digests)}"


@st.cache_resource(max_entries=64, show_spinner=False)
def feature_layers(model_key: str, _model: TrainedModel) -> tuple[list[str], str | None]:
    """The layers with an image-like output, and the one Grad-CAM uses by default (None if none)."""
    layers = inspection.feature_layers(_model)
    return layers, (inspection.last_convolution(_model) if layers else None)


@st.cache_resource(max_entries=ENTRIES, show_spinner=False)
def grad_cam_and_saliency(
    model_key: str, _model: TrainedModel, image: np.ndarray, predicted: int, layer: str
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM at `layer` and saliency of one prepared image for the class `predicted`, (height, width) each."""
    cam, salient = inspection.grad_cam_and_saliency(_model, image, classes=[predicted], layer_name=layer)
    return cam[0], salient[0]


@st.cache_resource(max_entries=ENTRIES, show_spinner=False)
def grad_cams(
    model_key: str, _model: TrainedModel, images: np.ndarray, classes: tuple[int, ...]
) -> np.ndarray:
    """Grad-CAM maps of a batch of prepared images at the default layer, each for its class."""
    if len(images) == 0:
        return np.zeros((0, *images.shape[1:3]), np.float32)
    return inspection.grad_cam(_model, images, classes=np.asarray(classes, dtype=np.int64))


@st.cache_resource(max_entries=ENTRIES, show_spinner=False)
def feature_maps(model_key: str, _model: TrainedModel, image: np.ndarray) -> dict[str, np.ndarray]:
    """Every spatial layer's output for one prepared image: layer name to (height, width, channels)."""
    return inspection.feature_maps(_model, image)

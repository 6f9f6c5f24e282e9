"""The Data page's forms: which dataset and how to prepare it, uploads, and augmentation."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import streamlit as st

from cnnlab.classroom import uploads
from cnnlab.data import datasets, generated
from cnnlab.data.info import DatasetInfo
from cnnlab.plain_text import as_text
from cnnlab.setting_ranges import AUGMENTATION_RANGES
from cnnlab.specs import AugmentationSettings, DataSettings
from cnnlab.store.run_store import default_home
from cnnlab.ui.session import controls, identity, state

OWN_IMAGES = "own images (upload a zip)"
DEGREES_PER_TURN = 360.0
DEGREES_FORMAT = "%g°"  # 14.4°, 45°: both rotation sliders write their value the same way
MAX_UPLOAD_BYTES = 200 * 2**20


def _registry() -> dict[str, DatasetInfo]:
    return {info.name: info for info in datasets.registry()}


def dataset_picker(current: DataSettings) -> str:
    """A select box over the registry (with availability) and own images; returns the dataset name or path."""
    registry = _registry()
    names = [*registry, OWN_IMAGES]
    own = current.dataset not in registry

    def label(name: str) -> str:
        if name == OWN_IMAGES:
            return name
        return registry[name].title + ("" if registry[name].available else " (not downloaded yet)")

    chosen = st.selectbox(
        "Dataset",
        names,
        names.index(OWN_IMAGES if own else current.dataset),
        key="dataset_name",
        disabled=controls.locked("dataset"),
        format_func=label,
    )
    if chosen != OWN_IMAGES:
        info = registry[chosen]
        st.caption(f"{info.description}  \n*Source: {info.source}. Licence: {info.licence}.*")
        # An unavailable set is not warned about here: loading it downloads it, or says once, in
        # the page's error, which file to place where.
        return chosen
    upload = st.file_uploader(
        "A zip with one folder of images per class",
        type=["zip"],
        key="dataset_upload",
        disabled=controls.locked("dataset"),
    )
    # An upload is its uploader's; a teacher may share one with the class.
    shared = identity.current_user().is_teacher and st.toggle(
        "Share this upload with the class",
        key="share_upload",
        help="Students can then train on it, and open links that name it.",
    )
    if upload is not None:
        data = upload.getvalue()
        if len(data) > MAX_UPLOAD_BYTES:
            st.error(
                f"The zip has {len(data) / 2**20:,.0f} MB; the limit is {MAX_UPLOAD_BYTES / 2**20:,.0f} MB."
            )
            return current.dataset if own else "digits"
        folder = uploads.class_folder(default_home()) if shared else state.uploads_folder()
        return str(save_upload(data, upload.name, folder))
    if own:
        st.caption(f"Using {as_text(Path(current.dataset).name)}.")
        return current.dataset
    st.info("Upload a zip to use your own images; until then the digits stay selected.")
    return "digits"


def save_upload(data: bytes, name: str, folder: Path) -> Path:
    """Keep an uploaded zip in `folder` (the user's uploads, or the class's), named by its content hash."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = "".join(char if char.isalnum() or char in "-_" else "_" for char in Path(name).stem)[:40]
    path = folder / f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}.zip"
    if not path.exists():
        path.write_bytes(data)
    return path


def preparation_form(dataset: str, current: DataSettings) -> DataSettings:
    """Image size, colour, subset, split and seed, plus the generated shapes' own options."""
    same = dataset == current.dataset
    columns = st.columns(3)
    if dataset == "digits":
        sizes = [None, *datasets.DIGITS_SIZES[1:]]
        image_size = columns[0].selectbox(
            "Image size",
            sizes,
            sizes.index(current.image_size) if same and current.image_size in sizes else 0,
            key="image_size",
            disabled=controls.locked("image_size"),
            format_func=lambda size: "8 (native)" if size is None else str(size),
        )
    else:
        unset, unset_help = datasets.unset_image_size(dataset)
        size = columns[0].number_input(
            f"Image size (0 = {unset})",
            0,
            datasets.MAXIMUM_IMAGE_SIZE,
            (current.image_size or 0) if same else 0,
            key="image_size_number",
            disabled=controls.locked("image_size"),
            help=unset_help,
        )
        image_size = int(size) or None
    modes = [None, "grayscale", "rgb"]
    color_mode = columns[1].selectbox(
        "Colour",
        modes,
        modes.index(current.color_mode) if same else 0,
        key="color_mode",
        disabled=controls.locked("image_size"),
        format_func=lambda mode: mode or "native",
    )
    subset = columns[2].number_input(
        "Use at most (0 = all images)",
        0,
        100_000,
        (current.subset or 0) if same else 0,
        step=100,
        key="subset",
        disabled=controls.locked("subset_and_split"),
    )
    columns = st.columns(3)
    validation = columns[0].slider(
        "Validation share",
        0.05,
        0.4,
        current.validation_fraction,
        0.05,
        key="validation",
        disabled=controls.locked("subset_and_split"),
    )
    test = columns[1].slider(
        "Test share",
        0.05,
        0.4,
        current.test_fraction,
        0.05,
        key="test",
        disabled=controls.locked("subset_and_split"),
    )
    seed = columns[2].number_input(
        "Seed", 0, 2**31 - 1, current.seed, key="data_seed", disabled=controls.locked("subset_and_split")
    )
    options = shapes_options(current.options if same else {}) if dataset == "shapes" else {}
    return DataSettings(
        dataset=dataset,
        image_size=image_size,
        color_mode=color_mode,
        subset=int(subset) or None,
        validation_fraction=validation,
        test_fraction=test,
        seed=int(seed),
        options=options,
    )


def shapes_options(current: Mapping[str, Any]) -> dict[str, Any]:
    """The generated shapes' options: classes, count, noise, rotation and scale."""
    merged = {**generated.DEFAULT_OPTIONS, **current}
    # The shapes on a row of their own, wide enough to show every chosen one; the numbers below.
    classes = st.multiselect(
        "Shapes",
        list(generated.SHAPE_NAMES),
        list(merged["classes"]),
        key="shape_classes",
        disabled=controls.locked("dataset"),
    )
    columns = st.columns(4)
    count = columns[0].number_input(
        "Images per shape",
        2,
        5000,
        int(merged["count_per_class"]),
        step=50,
        key="shape_count",
        disabled=controls.locked("dataset"),
    )
    noise = columns[1].slider(
        "Noise",
        0.0,
        0.5,
        float(merged["noise"]),
        0.01,
        key="shape_noise",
        disabled=controls.locked("dataset"),
    )
    rotation = columns[2].slider(
        "Rotation (degrees)",
        0.0,
        180.0,
        float(merged["rotation"]),
        5.0,
        format=DEGREES_FORMAT,
        key="shape_rotation",
        disabled=controls.locked("dataset"),
    )
    scale = columns[3].slider(
        "Scale",
        0.2,
        1.0,
        (float(merged["scale"][0]), float(merged["scale"][1])),
        0.05,
        key="shape_scale",
        disabled=controls.locked("dataset"),
    )
    chosen = {
        "classes": classes,
        "count_per_class": int(count),
        "noise": noise,
        "rotation": rotation,
        "scale": list(scale),
    }
    return {key: value for key, value in chosen.items() if value != generated.DEFAULT_OPTIONS[key]}


def augmentation_form(current: AugmentationSettings) -> AugmentationSettings:
    """Random flips, rotations, zooms, shifts, shears and contrast changes applied to training images."""
    st.caption(
        "Why: real drawings and photos are off-centre, slanted, larger or smaller than the training "
        "images. Small random shifts, rotations and zooms teach a small model to ignore that, so the "
        "digits presets train with them by default (at no cost in test accuracy)."
    )
    columns = st.columns(6)
    flips = ["none", "horizontal", "vertical", "horizontal_and_vertical"]
    flip = columns[0].selectbox(
        "Flip",
        flips,
        flips.index(current.flip),
        key="augment_flip",
        disabled=controls.locked("augmentation"),
        help="Mirror images at random. Digits and letters change meaning when flipped.",
    )
    # In degrees, as the shapes' rotation above; the settings keep Keras's fraction of a turn.
    lowest, highest = (bound * DEGREES_PER_TURN for bound in AUGMENTATION_RANGES["rotation"].bounds())
    shown = round(current.rotation * DEGREES_PER_TURN, 1)
    degrees = columns[1].slider(
        "Rotation (degrees)",
        lowest,
        highest,
        shown,
        1.0,
        format=DEGREES_FORMAT,
        key="augment_rotation_degrees",
        disabled=controls.locked("augmentation"),
        help="The largest random turn, either way.",
    )
    # Unmoved, the setting stays exactly as it was (14.4 degrees is not read back as 0.04000000001).
    rotation = current.rotation if degrees == shown else degrees / DEGREES_PER_TURN
    zoom = columns[2].slider(
        "Zoom",
        *AUGMENTATION_RANGES["zoom"].bounds(),
        current.zoom,
        0.05,
        key="augment_zoom",
        disabled=controls.locked("augmentation"),
    )
    translation = columns[3].slider(
        "Shift",
        *AUGMENTATION_RANGES["translation"].bounds(),
        current.translation,
        0.05,
        key="augment_translation",
        disabled=controls.locked("augmentation"),
        help="Largest shift as a fraction of the image size.",
    )
    shear = columns[4].slider(
        "Shear",
        *AUGMENTATION_RANGES["shear"].bounds(),
        current.shear,
        0.05,
        key="augment_shear",
        disabled=controls.locked("augmentation"),
        help="Slant images sideways and up or down, as a fraction.",
    )
    contrast = columns[5].slider(
        "Contrast",
        *AUGMENTATION_RANGES["contrast"].bounds(),
        current.contrast,
        0.05,
        key="augment_contrast",
        disabled=controls.locked("augmentation"),
    )
    return AugmentationSettings(
        flip=flip, rotation=rotation, zoom=zoom, translation=translation, contrast=contrast, shear=shear
    )

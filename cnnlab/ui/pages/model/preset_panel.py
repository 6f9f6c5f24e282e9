"""The Model page's preset panel: pick a preset, fit it to the data, and fix the data when it cannot fit.

Most presets were written for larger images than the default 8x8 digits. When a preset fitted to
the current data would not work, the panel looks for the smallest image size (and colour mode)
the dataset offers at which it does, and offers a button that sets it on the data and loads the
preset. When no size of the dataset helps (the VGG16 presets need 32x32 colour images; the digits
stop at 28x28), it says why and which data would do. A preset whose backbone needs ImageNet weights
that are not on this machine says so here, before anything is trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import streamlit as st

from cnnlab.data import datasets
from cnnlab.model import checks, presets, pretrained_weights, shapes
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.specs import DataSettings, ModelSpec
from cnnlab.ui.session import state
from cnnlab.ui.widgets.dataset_context import DatasetContext

# Image sizes offered for datasets other than the digits, besides the preset's own input size.
COMMON_SIZES = (16, 28, 32, 48, 64, 96, 128, 160, 224, 256)


@dataclass(frozen=True)
class ImageSizeFix:
    """Data settings at which a preset fits, the image shape they give, and why it did not fit before."""

    data: DataSettings
    image_shape: tuple[int, int, int]
    problem: str


def fitted(spec: ModelSpec, image_shape: tuple[int, int, int], num_classes: int) -> shapes.Analysis:
    """The analysis of `spec` fitted to images of `image_shape` and `num_classes` classes."""
    adapted = presets.adapt(spec, image_shape, num_classes)
    return shapes.analyse(adapted, num_classes=num_classes, dataset_input_shape=image_shape)


def candidate_sizes(data: DataSettings, wanted: int, current: int) -> list[int]:
    """The image sizes larger than `current` the dataset offers: `wanted` (the size the preset was
    written for) first when offered, then the others, smallest first."""
    if data.dataset == "digits":
        offered = set(datasets.DIGITS_SIZES)
    else:
        lowest, highest = datasets.MINIMUM_IMAGE_SIZE, datasets.MAXIMUM_IMAGE_SIZE
        offered = {size for size in (*COMMON_SIZES, wanted) if lowest <= size <= highest}
    larger = sorted(size for size in offered if size > current)
    return sorted(larger, key=lambda size: size != wanted)


def image_size_fix(spec: ModelSpec, data: DataSettings, context: DatasetContext) -> ImageSizeFix | None:
    """A larger image size (in colour if the preset wants colour) at which `spec` fits the data: the
    size it was written for if the dataset offers it and it fits there, else the smallest that fits.

    None when it already fits, when the data is not loaded, or when no size the dataset offers helps.
    """
    if context.image_shape is None or context.num_classes is None:
        return None
    now = fitted(spec, context.image_shape, context.num_classes)
    if now.ok:
        return None
    height, _, channels = context.image_shape
    colour = spec.input_shape[2] == 3 and channels == 1
    for size in candidate_sizes(data, spec.input_shape[0], height):
        shape = (size, size, 3 if colour else channels)
        if fitted(spec, shape, context.num_classes).ok:
            changed = dataclasses.replace(
                data, image_size=size, color_mode="rgb" if colour else data.color_mode
            )
            return ImageSizeFix(changed, shape, now.errors[0].message)
    return None


def smallest_fitting_shape(spec: ModelSpec, num_classes: int) -> tuple[int, int, int] | None:
    """The smallest square image shape a dataset other than the digits can give at which `spec` fits
    (in colour when the preset was written for colour), or None when no image size helps."""
    channels = spec.input_shape[2]
    lowest, highest = datasets.MINIMUM_IMAGE_SIZE, datasets.MAXIMUM_IMAGE_SIZE
    for size in sorted(size for size in {*COMMON_SIZES, spec.input_shape[0]} if lowest <= size <= highest):
        if fitted(spec, (size, size, channels), num_classes).ok:
            return (size, size, channels)
    return None


def no_size_fits(spec: ModelSpec, data: DataSettings, context: DatasetContext) -> str | None:
    """Why `spec` fits no image size the current dataset offers, and which data would do (Markdown).

    None when it already fits, when the data is not loaded, or when `image_size_fix` has a size.
    """
    if context.image_shape is None or context.num_classes is None:
        return None
    if fitted(spec, context.image_shape, context.num_classes).ok:
        return None
    if image_size_fix(spec, data, context) is not None:
        return None
    height, _, channels = context.image_shape
    colour = spec.input_shape[2] == 3 and channels == 1
    largest = max([height, *candidate_sizes(data, spec.input_shape[0], height)])
    tried = (largest, largest, 3 if colour else channels)
    problem = fitted(spec, tried, context.num_classes).errors[0].message
    # The problem's first sentence: its own advice ("Increase the image size") cannot help here.
    cause = problem.split(". ")[0].rstrip(".")
    said = (
        f"No image size of the current data fixes it ({as_text(context.title)}: at most "
        f"{checks.format_shape(tried)}): {as_text(cause)}."
    )
    needed = smallest_fitting_shape(spec, context.num_classes)
    if needed is None:
        return said
    in_colour = " in colour" if needed[2] == 3 else ""
    return (
        f"{said}\n\nIt needs images of at least {checks.format_shape(needed)}: on the Data page choose "
        f"the generated shapes, CIFAR-10 or your own images (a zip of class folders) at image size "
        f"{needed[0]} or more{in_colour}, then load it again."
    )


def preset_panel(context: DatasetContext) -> None:
    """Choose a preset and load it, fitted to the data or as written; offer an image size it fits."""
    with st.container(border=True):
        left, middle, right = st.columns([3, 2, 1])
        preset_name = left.selectbox(
            "Start from a preset",
            list(presets.PRESETS),
            key="preset_name",
            format_func=lambda name: presets.get(name).title,
        )
        preset = presets.get(preset_name)
        left.caption(f"{preset.description} *From {preset.source}.*")
        left.caption(training_line(preset))
        fit = middle.checkbox(
            "Fit it to the current data",
            value=True,
            key="preset_fit",
            help="Set the input shape to the data's images and the last layer to its classes.",
        )
        right.write("")
        if right.button("Load preset", key="load_preset", type="primary"):
            spec = preset.spec
            if fit and context.image_shape and context.num_classes:
                spec = presets.adapt(spec, context.image_shape, context.num_classes)
            _load(preset, spec)
        for missing in pretrained_weights.missing(preset.spec):
            st.warning(as_text_lines(missing.message), icon=":material/cloud_off:")
        fix = image_size_fix(preset.spec, state.draft().data, context) if fit else None
        unfixable = no_size_fits(preset.spec, state.draft().data, context) if fit and fix is None else None
        if unfixable is not None and context.image_shape is not None:
            now = checks.format_shape(context.image_shape)
            st.info(
                f"{preset.title} does not fit {now} images.\n\n{as_text_lines(unfixable)}",
                icon=":material/info:",
            )
        if fix is not None and context.num_classes is not None and context.image_shape is not None:
            now, then = checks.format_shape(context.image_shape), checks.format_shape(fix.image_shape)
            colour = " in colour" if fix.image_shape[2] != context.image_shape[2] else ""
            st.info(
                f"{preset.title} does not fit {now} images: {as_text_lines(fix.problem)}\n\n"
                f"At image size {fix.data.image_size}{colour} ({then}) it does.",
                icon=":material/lightbulb:",
            )
            label = f"Use image size {fix.data.image_size}{colour} and load {preset.title}"
            if st.button(label, key="preset_image_size_fix"):
                state.set_data(fix.data)
                _load(preset, presets.adapt(preset.spec, fix.image_shape, context.num_classes))


def training_line(preset: presets.Preset) -> str:
    """What loading `preset` does to the training settings, in a sentence."""
    if not preset.training:
        return "Loading it keeps your training settings."
    carried = [presets.describe_setting(name, value) for name, value in preset.training.items()]
    return (
        f"Loading it also sets the training: {', '.join(carried)}; every other training setting goes back "
        "to its default."
    )


def _load(preset: presets.Preset, spec: ModelSpec) -> None:
    """Make `spec` the draft's model; a preset with training settings sets them over the defaults."""
    training = presets.training_settings(preset) if preset.training else None
    state.load_preset(spec, training, preset.name)
    if preset.training:
        carried = ", ".join(presets.describe_setting(name, value) for name, value in preset.training.items())
        st.toast(f"Training settings from {preset.title}: {carried}.")
    st.rerun()

"""Setups entering the app (a link, imported JSON, a preset) made fit for the widgets, with notes.

A setup can enter from a hand-edited link, JSON pasted from a tutorial or a preset. It is checked
once, here, where it enters: whatever the pages cannot show (an unknown layer type, a parameter
of the wrong kind, a value outside a widget's range, a broken section of a link) is refused or
brought into range, the rest of the setup is kept, and every change is written down as a note the
page shows. The widgets read their ranges from this module, so they never receive a value
outside them.

Nothing here imports Streamlit: the functions take and return plain values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cnnlab import share
from cnnlab.data import datasets, generated, standard_sets
from cnnlab.errors import CnnLabError, SpecError
from cnnlab.model import catalogue
from cnnlab.model.parameters import LayerType, Parameter
from cnnlab.setting_ranges import AUGMENTATION_RANGES, BATCH_SIZES, TRAINING_RANGES, Range, bound_text
from cnnlab.specs import AugmentationSettings, DataSettings, LayerSpec, ModelSpec, TrainingSettings

Settings = TypeVar("Settings", AugmentationSettings, DataSettings, TrainingSettings)

# The widgets' ranges: the Data page's forms and the Model page's input row. The training settings'
# ranges, the augmentation's included, are in `cnnlab.setting_ranges`, which the specs enforce too.
DATA_RANGES: dict[str, tuple[float, float]] = {
    "image_size": (datasets.MINIMUM_IMAGE_SIZE, datasets.MAXIMUM_IMAGE_SIZE),
    "subset": (1, 100_000),
    "validation_fraction": (0.05, 0.4),
    "test_fraction": (0.05, 0.4),
    "seed": (0, 2**31 - 1),
}
INPUT_SIZE_RANGE = (1, 1024)
INPUT_CHANNELS_RANGE = (1, 16)
# Streamlit's number inputs hold numbers JavaScript represents exactly.
LARGEST_WIDGET_NUMBER = 2**53 - 1


@dataclass(frozen=True)
class Admitted:
    """A setup fit for the pages, and a note for everything refused or changed on the way in."""

    setup: share.Setup
    notes: tuple[str, ...] = ()


def read_link(token: str, default: share.Setup) -> Admitted:
    """The setup in a `?setup=` token with every usable part kept; SpecError only if nothing is readable."""
    payload = share.payload(token)
    notes: list[str] = []
    sections = {"data": DataSettings, "model": ModelSpec, "training": TrainingSettings}
    unknown = sorted(map(str, set(payload) - set(sections)))
    if unknown:
        notes.append(f"The link has the unknown part(s) {unknown}; they were left out.")
    for name in sections:
        if name not in payload:
            notes.append(f"The link has no {name} settings; the defaults are used.")
    data, data_notes = _lenient_settings(DataSettings, payload.get("data", {}), "data settings", default.data)
    training, training_notes = _read_training(payload.get("training", {}), default.training)
    model, model_notes = read_model(payload.get("model", default.model.to_dict()), default.model, "The link")
    admitted = admit(share.Setup(data, model, training))
    return Admitted(admitted.setup, tuple(notes + data_notes + training_notes + model_notes) + admitted.notes)


def admit(setup: share.Setup) -> Admitted:
    """`setup` with every value the widgets cannot show brought into their range, and notes saying so."""
    data, data_notes = fit_data(setup.data)
    training, training_notes = fit_training(setup.training)
    model, model_notes = fit_model(setup.model)
    return Admitted(share.Setup(data, model, training), tuple(data_notes + training_notes + model_notes))


def _read_training(data: Any, default: TrainingSettings) -> tuple[TrainingSettings, list[str]]:
    """Training settings read leniently, the nested augmentation settings too."""
    notes: list[str] = []
    if isinstance(data, Mapping) and "augmentation" in data:
        raw = data["augmentation"]
        if isinstance(raw, Mapping):
            raw, notes = _into_ranges(raw, AUGMENTATION_RANGES, "The augmentation")
        augmentation, augmentation_notes = _lenient_settings(
            AugmentationSettings, raw, "augmentation settings", default.augmentation
        )
        notes += augmentation_notes
        data = {**data, "augmentation": augmentation}
    if isinstance(data, Mapping):
        data, range_notes = _into_ranges(data, TRAINING_RANGES, "The training setting")
        notes += range_notes
    training, training_notes = _lenient_settings(TrainingSettings, data, "training settings", default)
    return training, notes + training_notes


def _into_ranges(
    data: Mapping[str, Any], ranges: Mapping[str, Range], where: str
) -> tuple[dict[str, Any], list[str]]:
    """`data` with every number outside its range moved to the range's nearest end, and a note for
    each; the specs refuse such numbers, the widgets could not show them."""
    kept = dict(data)
    notes = []
    for name, limits in ranges.items():
        value = kept.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            kept[name], note = _clamped(value, limits.bounds(), name, where)
            if note:
                notes.append(note)
    return kept, notes


def _lenient_settings(
    cls: type[Settings], data: Any, what: str, default: Settings
) -> tuple[Settings, list[str]]:
    """`cls` read from `data` field by field: a field that cannot be used keeps the default's value."""
    if not isinstance(data, Mapping):
        return default, [
            f"The {what} must be a JSON object; got {type(data).__name__}. The defaults are used."
        ]
    names = {item.name for item in dataclasses.fields(cls)}
    notes = []
    unknown = sorted(map(str, set(data) - names))
    if unknown:
        notes.append(f"The {what} have the unknown key(s) {unknown}; they were left out.")
    kept = default.to_dict()
    for name, value in data.items():
        if name not in names:
            continue
        try:
            cls.from_dict({**kept, name: value})
        except SpecError as error:
            notes.append(f"In the {what}: {error} The default {getattr(default, name)!r} is used.")
            continue
        kept[name] = value
    return cls.from_dict(kept), notes


def _clamped(value: Any, limits: tuple[float, float], name: str, where: str) -> tuple[Any, str | None]:
    """`value` brought into `limits`, and a note when it had to move."""
    lowest, highest = limits
    if lowest <= value <= highest:
        return value, None
    bounded = type(value)(min(max(value, lowest), highest))
    return bounded, (
        f"{where} {name}={value!r} is outside {bound_text(lowest)} to {bound_text(highest)}; {bounded!r} is used."
    )


def fit_training(settings: TrainingSettings) -> tuple[TrainingSettings, list[str]]:
    """Training settings within the Train and Data pages' widgets, with a note per change."""
    changes: dict[str, Any] = {}
    notes = []
    # The specs keep every number within its range; the batch size must also be one the page offers.
    if settings.batch_size not in BATCH_SIZES:
        nearest = min(BATCH_SIZES, key=lambda size: (abs(size - settings.batch_size), size))
        changes["batch_size"] = nearest
        notes.append(
            f"The training setting batch_size={settings.batch_size} is not one the Train page offers "
            f"({', '.join(map(str, BATCH_SIZES))}); {nearest} is used."
        )
    return dataclasses.replace(settings, **changes), notes


def fit_data(settings: DataSettings) -> tuple[DataSettings, list[str]]:
    """Data settings within the Data page's widgets, with a note per change."""
    changes: dict[str, Any] = {}
    notes = []
    for name, limits in DATA_RANGES.items():
        if getattr(settings, name) is None:
            continue
        value, note = _clamped(getattr(settings, name), limits, name, "The data setting")
        if note:
            changes[name] = value
            notes.append(note)
    size = changes.get("image_size", settings.image_size)
    if settings.dataset == "digits" and size is not None and size not in datasets.DIGITS_SIZES:
        nearest = min(datasets.DIGITS_SIZES, key=lambda option: (abs(option - size), option))
        changes["image_size"] = None if nearest == datasets.DIGITS_SIZES[0] else nearest
        notes.append(
            f"The digits come in image sizes {', '.join(map(str, datasets.DIGITS_SIZES))}; "
            f"image_size={settings.image_size} was changed to {nearest}."
        )
    problem = _options_problem(settings.dataset, settings.options)
    if problem:
        changes["options"] = {}
        notes.append(f"The dataset options {dict(settings.options)!r} were left out: {problem}")
    return dataclasses.replace(settings, **changes), notes


def _options_problem(dataset: str, options: Mapping[str, Any]) -> str | None:
    """Why the dataset cannot take `options`, or None."""
    try:
        if dataset == "shapes":
            generated.check_options(options)
        elif dataset in standard_sets.SETS:
            standard_sets.check_options(dataset, options)
        elif options:
            return f"the {dataset} dataset takes no options."
    except CnnLabError as error:
        return str(error)
    return None


def read_model(data: Any, fallback: ModelSpec, where: str = "The model") -> tuple[ModelSpec, list[str]]:
    """A model read from JSON with every usable layer kept; SpecError when no layer can be used."""
    if not isinstance(data, Mapping):
        raise SpecError(
            f'{where} must hold a JSON object like {{"input_shape": [28, 28, 1], "layers": [...]}}; '
            f"got {type(data).__name__}."
        )
    notes = []
    unknown = sorted(map(str, set(data) - {"name", "input_shape", "layers"}))
    if unknown:
        notes.append(
            f'{where} has the unknown key(s) {unknown}; the keys are "name", "input_shape", "layers".'
        )
    raw_shape: Any = data.get("input_shape")
    try:
        input_shape = ModelSpec(raw_shape, (), "cnn").input_shape
    except SpecError as error:
        input_shape = fallback.input_shape
        notes.append(f"{where}: {error} The input {list(input_shape)} is used instead.")
    raw_layers = data.get("layers")
    if not isinstance(raw_layers, list | tuple):
        raw_layers = []
        notes.append(f'{where}: "layers" must be a list of layer objects; got {data.get("layers")!r}.')
    layers = []
    for position, raw in enumerate(raw_layers, 1):
        layer, layer_notes = read_layer(raw, position)
        notes.extend(layer_notes)
        if layer is not None:
            layers.append(layer)
    if not layers:
        message = f"{where} has no layer CNN Lab can show. " + " ".join(notes)
        raise SpecError(message.strip() + " Nothing was changed.")
    name = data.get("name", fallback.name)
    if not isinstance(name, str):
        notes.append(f'{where}: "name" must be text; got {name!r}. The name {fallback.name!r} is used.')
        name = fallback.name
    model, fit_notes = fit_model(ModelSpec(input_shape, tuple(layers), name))
    return model, notes + fit_notes


def read_layer(raw: Any, position: int) -> tuple[LayerSpec | None, list[str]]:
    """One layer, without the parameters the Model page cannot show; None (and why) if unusable."""
    try:
        layer = LayerSpec.from_dict(raw, position)
        entry = catalogue.layer_type(layer.type)
    except SpecError as error:
        return None, [f"Layer {position} was left out: {error}"]
    notes = []
    params: dict[str, Any] = {}
    for name, value in layer.params.items():
        problem = _unshowable(entry, name, value)
        if problem:
            notes.append(f"Layer {position} ({layer.type}): {name}={value!r} was left out: {problem}.")
        else:
            params[name] = value
    return LayerSpec(layer.type, params), notes


def _unshowable(entry: LayerType, name: str, value: Any) -> str | None:
    """Why the Model page cannot show `value` for parameter `name`, or None.

    Values of the right kind but outside the catalogue's range are kept: the page shows them and
    says what is wrong with them.
    """
    if name == "name":
        return None if isinstance(value, str) else "a layer name must be text"
    try:
        parameter = entry.parameter(name)
    except SpecError as error:
        return str(error).removeprefix(f"{entry.name} ").rstrip(".")
    return _wrong_kind(parameter, value)


def _widget_number(value: Any, whole: bool) -> bool:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (whole and not isinstance(value, int))
    ):
        return False
    return math.isfinite(value) and abs(value) <= LARGEST_WIDGET_NUMBER


def _wrong_kind(parameter: Parameter, value: Any) -> str | None:
    """Why `value` is not of the kind a widget for `parameter` holds, or None."""
    kind = parameter.kind
    if value is None:
        return None
    if kind in ("int", "float"):
        return (
            None
            if _widget_number(value, kind == "int")
            else f"it must be {'a whole' if kind == 'int' else 'a'} number"
        )
    if kind == "bool":
        return None if isinstance(value, bool) else "it must be true or false"
    if kind == "choice":
        return (
            None
            if value in parameter.choices
            else "it must be one of " + ", ".join(map(str, parameter.choices))
        )
    if kind == "size":
        sizes = value if isinstance(value, list | tuple) else [value]
        if len(sizes) not in (1, 2) or not all(_widget_number(size, whole=True) for size in sizes):
            return "it must be a whole number or a pair [height, width]"
        return None
    if not isinstance(value, Mapping) or not value or set(value) - {"l1", "l2"}:
        return 'it must be null or an object like {"l2": 0.0001}'
    if not all(_widget_number(amount, whole=False) and 0 <= amount <= 1 for amount in value.values()):
        return "the Model page takes L1 and L2 amounts from 0 to 1"
    return None


def fit_model(model: ModelSpec) -> tuple[ModelSpec, list[str]]:
    """The model with its input shape within the Model page's input row, and a note if it moved."""
    limits = (INPUT_SIZE_RANGE, INPUT_SIZE_RANGE, INPUT_CHANNELS_RANGE)
    names = ("height", "width", "channels")
    shape, notes = [], []
    for size, bounds, name in zip(model.input_shape, limits, names, strict=True):
        fitted, note = _clamped(size, bounds, name, "The input")
        shape.append(fitted)
        if note:
            notes.append(note)
    layers = tuple(_single_sizes(layer) for layer in model.layers)
    return dataclasses.replace(model, input_shape=tuple(shape), layers=layers), notes


def _single_sizes(layer: LayerSpec) -> LayerSpec:
    """A one-number size list, such as [3], written as the number the widget shows."""
    changes = {
        name: value[0]
        for name, value in layer.params.items()
        if isinstance(value, list | tuple) and len(value) == 1 and isinstance(value[0], int)
    }
    return layer.with_params(**changes) if changes else layer

"""Frozen descriptions of a model, its data and its training, with a JSON round-trip.

Layer JSON speaks Keras: `type` is the Keras class name and every other key is a constructor
argument of that class, for example
`{"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"}`.

Every value a user can give is checked on construction: anything malformed raises `SpecError`
saying which field was wrong, the value received and what to use instead.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cnnlab import spec_fields
from cnnlab.errors import SpecError
from cnnlab.setting_ranges import AUGMENTATION_RANGES, LARGEST_SEED, TRAINING_RANGES

JsonDict = dict[str, Any]
Settings = TypeVar("Settings", "AugmentationSettings", "DataSettings", "TrainingSettings")


def _freeze(value: Any) -> Any:
    """Turn lists into tuples so a spec compares and hashes by value."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, Mapping):
        return {key: _freeze(item) for key, item in value.items()}
    return value


def _thaw(value: Any) -> Any:
    """Turn tuples back into lists for JSON."""
    if isinstance(value, tuple | list):
        return [_thaw(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class LayerSpec:
    """One layer: its Keras class name and the constructor arguments given explicitly."""

    type: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type:
            raise SpecError(
                f'A layer\'s "type" must be the name of its Keras class, e.g. "Conv2D"; got {self.type!r}.'
            )
        params = spec_fields.text_keyed(self.params, f"The parameters of {self.type}", '{"filters": 32}')
        object.__setattr__(self, "params", _freeze(params))

    def __hash__(self) -> int:
        return hash((self.type, json.dumps(_thaw(self.params), sort_keys=True, default=repr)))

    def get(self, name: str, default: Any = None) -> Any:
        """The value of parameter `name`, or `default` when it is not given."""
        return self.params.get(name, default)

    def with_params(self, **changes: Any) -> LayerSpec:
        """A copy with some parameters changed; a value of None removes the parameter."""
        params = dict(self.params)
        for name, value in changes.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = value
        return LayerSpec(self.type, params)

    def to_dict(self) -> JsonDict:
        """The Keras-speaking JSON form: `{"type": ..., **params}`."""
        return {"type": self.type, **_thaw(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], position: int | None = None) -> LayerSpec:
        """Read a layer from its JSON form."""
        where = f"Layer {position}" if position is not None else "A layer"
        if not isinstance(data, Mapping):
            raise SpecError(f'{where} must be a JSON object like {{"type": "Conv2D", ...}}; got {data!r}.')
        if "type" not in data or not isinstance(data["type"], str):
            raise SpecError(
                f'{where} has no "type"; every layer names its Keras class, e.g. "type": "Conv2D". '
                f"Got keys {sorted(map(str, data))}."
            )
        params = {key: value for key, value in data.items() if key != "type"}
        if not all(isinstance(key, str) for key in params):
            raise SpecError(f"{where} has a parameter name that is not text: {sorted(map(repr, params))}.")
        return cls(data["type"], params)


def _input_shape(value: Any) -> tuple[int, int, int]:
    """`value` as (height, width, channels); SpecError unless it is three positive whole numbers."""
    if (
        not isinstance(value, list | tuple)
        or len(value) != 3
        or not all(isinstance(size, numbers.Integral) and not isinstance(size, bool) for size in value)
        or not all(int(size) > 0 for size in value)
    ):
        raise SpecError(
            '"input_shape" must be three positive integers [height, width, channels], '
            f"e.g. [28, 28, 1]; got {value!r}."
        )
    height, width, channels = (int(size) for size in value)
    return (height, width, channels)


@dataclass(frozen=True)
class ModelSpec:
    """A sequential CNN: the input shape (height, width, channels) and the ordered layers."""

    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]
    name: str = "cnn"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", _input_shape(self.input_shape))
        if not isinstance(self.layers, list | tuple) or not all(
            isinstance(layer, LayerSpec) for layer in self.layers
        ):
            raise SpecError(f"A model's layers must be a list of layers; got {self.layers!r}.")
        object.__setattr__(self, "layers", tuple(self.layers))
        if not isinstance(self.name, str):
            raise SpecError(f'A model\'s "name" must be text, e.g. "cnn"; got {self.name!r}.')

    def to_dict(self) -> JsonDict:
        """The JSON form: `{"name", "input_shape", "layers"}`."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The spec as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def replace_layers(self, layers: tuple[LayerSpec, ...] | list[LayerSpec]) -> ModelSpec:
        """A copy with other layers."""
        return dataclasses.replace(self, layers=tuple(layers))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Read a model from its JSON form, checking its structure (not its architecture)."""
        if not isinstance(data, Mapping):
            raise SpecError(f"A model spec must be a JSON object; got {type(data).__name__}.")
        unknown = set(data) - {"name", "input_shape", "layers"}
        if unknown:
            raise SpecError(
                f"Unknown key(s) {sorted(map(str, unknown))} in the model spec; "
                'the keys are "name", "input_shape" and "layers".'
            )
        input_shape = _input_shape(data.get("input_shape"))
        layers = data.get("layers")
        if not isinstance(layers, list | tuple) or not layers:
            raise SpecError(f'"layers" must be a non-empty list of layer objects; got {layers!r}.')
        return cls(
            input_shape=input_shape,
            layers=tuple(LayerSpec.from_dict(layer, position) for position, layer in enumerate(layers, 1)),
            name=str(data.get("name", "cnn")),
        )

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        """Read a model from JSON text."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(
                f"The model spec is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
            ) from None
        except (TypeError, RecursionError):
            raise SpecError(
                f"The model spec must be JSON text; got {type(text).__name__} {str(text)[:60]!r}."
            ) from None
        return cls.from_dict(data)


def _settings_from_dict(cls: type[Settings], data: Mapping[str, Any], what: str) -> Settings:
    """Build a settings dataclass from a dict, rejecting unknown keys and coercing lists."""
    if not isinstance(data, Mapping):
        raise SpecError(f"The {what} must be a JSON object; got {type(data).__name__}.")
    names = {item.name for item in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise SpecError(
            f"Unknown {what} key(s) {sorted(map(str, unknown))}; the keys are {sorted(names)}. "
            "Remove or rename them."
        )
    values = {key: _freeze(value) for key, value in data.items()}
    try:
        return cls(**values)
    except SpecError as error:
        raise SpecError(f"Invalid {what}: {error}") from None


OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "step", "exponential", "cosine", "plateau")
COLOR_MODES = ("grayscale", "rgb")
FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")
MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")


@dataclass(frozen=True)
class AugmentationSettings:
    """Random transformations applied to training images only (Keras `Random*` layers).

    Factors follow Keras: rotation is a fraction of a full turn, zoom and translation are
    fractions of the image size, contrast a fraction of the contrast.
    """

    flip: str = "none"  # "none", "horizontal", "vertical" or "horizontal_and_vertical"
    rotation: float = 0.0
    zoom: float = 0.0
    translation: float = 0.0
    contrast: float = 0.0
    shear: float = 0.0

    def __post_init__(self) -> None:
        spec_fields.choice(self, "flip", FLIPS)
        for name, limits in AUGMENTATION_RANGES.items():
            spec_fields.within(self, name, limits)

    @property
    def active(self) -> bool:
        """True when at least one transformation is switched on."""
        return self.flip != "none" or any(
            (self.rotation, self.zoom, self.translation, self.contrast, self.shear)
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return dataclasses.asdict(self)

    def in_words(self) -> str:
        """What the transformations do, as a learner reads them: "random turns up to 14.4° either way,
        shifts up to 10% of the image and zooms up to 10%" ("none" when none is on)."""
        flips = {
            "horizontal": "left-right",
            "vertical": "upside-down",
            "horizontal_and_vertical": "both ways",
        }
        parts = [f"{flips[self.flip]} flips"] if self.flip != "none" else []
        for amount, words in (
            (self.rotation * 360, "turns up to {:g}° either way"),
            (self.translation * 100, "shifts up to {:g}% of the image"),
            (self.zoom * 100, "zooms up to {:g}%"),
            (self.shear * 100, "shears up to {:g}%"),
            (self.contrast * 100, "contrast changes up to {:g}%"),
        ):
            if amount:
                parts.append(words.format(round(amount, 1)))
        if not parts:
            return "none"
        return "random " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AugmentationSettings:
        """Read from the JSON form."""
        return _settings_from_dict(cls, data, "augmentation settings")


@dataclass(frozen=True)
class DataSettings:
    """Which data to train on and how to prepare it."""

    dataset: str = "digits"
    image_size: int | None = None  # None keeps the dataset's own size
    color_mode: str | None = None  # None keeps the dataset's own colour mode
    subset: int | None = None  # at most this many images in all, stratified
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)  # dataset-specific, e.g. shapes' noise

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise SpecError(
                f'dataset must be the name of a dataset, e.g. "digits"; got {self.dataset!r}. '
                "The Data page lists them."
            )
        options = spec_fields.text_keyed(self.options, "The dataset options", '{"noise": 0.1}')
        object.__setattr__(self, "options", _freeze(options))
        spec_fields.number(self, "image_size", whole=True, minimum=1, optional=True)
        spec_fields.choice(self, "color_mode", (None, *COLOR_MODES))
        spec_fields.number(self, "subset", whole=True, minimum=1, optional=True)
        spec_fields.number(self, "validation_fraction", minimum=0.0, maximum=1.0, below=True)
        spec_fields.number(self, "test_fraction", minimum=0.0, maximum=1.0, below=True)
        spec_fields.number(self, "seed", whole=True, minimum=0, maximum=LARGEST_SEED)
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise SpecError(
                "validation_fraction + test_fraction must leave at least 10% for training; "
                f"got {self.validation_fraction + self.test_fraction:.2f}. Lower one of them."
            )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        data: JsonDict = _thaw(dataclasses.asdict(self))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSettings:
        """Read from the JSON form."""
        return _settings_from_dict(cls, data, "data settings")


@dataclass(frozen=True)
class TrainingSettings:
    """How to compile and fit: optimizer, learning rate and schedule, batches, stopping."""

    optimizer: str = "adam"
    learning_rate: float = 0.001
    momentum: float = 0.9  # SGD only
    nesterov: bool = False  # SGD only
    weight_decay: float = 0.0001  # AdamW only
    schedule: str = "constant"
    schedule_step_epochs: int = 5  # step: multiply by schedule_decay_rate every this many epochs
    schedule_decay_rate: float = 0.5  # step and exponential (per epoch)
    plateau_patience: int = 2
    plateau_factor: float = 0.5
    minimum_learning_rate: float = 1e-6
    batch_size: int = 32
    epochs: int = 10
    l2: float = 0.0  # added to every Conv and Dense kernel without its own regulariser
    early_stopping: bool = False
    early_stopping_monitor: str = "val_loss"
    early_stopping_patience: int = 3
    restore_best_weights: bool = True
    augmentation: AugmentationSettings = field(default_factory=AugmentationSettings)
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.augmentation, Mapping):
            object.__setattr__(self, "augmentation", AugmentationSettings.from_dict(self.augmentation))
        elif not isinstance(self.augmentation, AugmentationSettings):
            raise SpecError(
                'augmentation must be a JSON object such as {"flip": "horizontal", "rotation": 0.05}; '
                f"got {self.augmentation!r}."
            )
        spec_fields.choice(self, "optimizer", OPTIMIZERS)
        spec_fields.choice(self, "schedule", SCHEDULES)
        spec_fields.choice(self, "early_stopping_monitor", MONITORS)
        for name in ("nesterov", "early_stopping", "restore_best_weights"):
            spec_fields.flag(self, name)
        # Every number has its range in `cnnlab.setting_ranges`, which the Train page's widgets use too.
        for name, limits in TRAINING_RANGES.items():
            spec_fields.within(self, name, limits)

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSettings:
        """Read from the JSON form."""
        return _settings_from_dict(cls, data, "training settings")

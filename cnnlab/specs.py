"""Frozen descriptions of a model, its data and its training, with a JSON round-trip.

Layer JSON speaks Keras: `type` is the Keras class name and every other key is a constructor
argument of that class, for example
`{"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"}`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cnnlab.errors import SpecError

JsonDict = dict[str, Any]


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
        object.__setattr__(self, "params", _freeze(dict(self.params)))

    def __hash__(self) -> int:
        return hash((self.type, json.dumps(_thaw(self.params), sort_keys=True)))

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
                f"Got keys {sorted(data)}."
            )
        params = {key: value for key, value in data.items() if key != "type"}
        return cls(data["type"], params)


@dataclass(frozen=True)
class ModelSpec:
    """A sequential CNN: the input shape (height, width, channels) and the ordered layers."""

    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]
    name: str = "cnn"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))

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
                f"Unknown key(s) {sorted(unknown)} in the model spec; "
                'the keys are "name", "input_shape" and "layers".'
            )
        input_shape = data.get("input_shape")
        if (
            not isinstance(input_shape, list | tuple)
            or len(input_shape) != 3
            or not all(
                isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in input_shape
            )
        ):
            raise SpecError(
                '"input_shape" must be three positive integers [height, width, channels], '
                f"e.g. [28, 28, 1]; got {input_shape!r}."
            )
        layers = data.get("layers")
        if not isinstance(layers, list | tuple) or not layers:
            raise SpecError(f'"layers" must be a non-empty list of layer objects; got {layers!r}.')
        return cls(
            input_shape=tuple(input_shape),
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
        return cls.from_dict(data)


def _settings_from_dict(cls: type, data: Mapping[str, Any], what: str) -> Any:
    """Build a settings dataclass from a dict, rejecting unknown keys and coercing lists."""
    if not isinstance(data, Mapping):
        raise SpecError(f"The {what} must be a JSON object; got {type(data).__name__}.")
    names = {item.name for item in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise SpecError(f"Unknown {what} key(s) {sorted(unknown)}; the keys are {sorted(names)}.")
    values = {key: _freeze(value) for key, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise SpecError(f"Invalid {what}: {error}") from None


OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "step", "exponential", "cosine", "plateau")
COLOR_MODES = ("grayscale", "rgb")


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
        if self.flip not in ("none", "horizontal", "vertical", "horizontal_and_vertical"):
            raise ValueError(
                f"flip must be none, horizontal, vertical or horizontal_and_vertical; got {self.flip!r}"
            )
        for name in ("rotation", "zoom", "translation", "contrast", "shear"):
            value = getattr(self, name)
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name} must be in [0, 1); got {value!r}")

    @property
    def active(self) -> bool:
        """True when at least one transformation is switched on."""
        return self.flip != "none" or any(
            (self.rotation, self.zoom, self.translation, self.contrast, self.shear)
        )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return dataclasses.asdict(self)

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
        object.__setattr__(self, "options", _freeze(dict(self.options)))
        if self.color_mode is not None and self.color_mode not in COLOR_MODES:
            raise ValueError(f"color_mode must be grayscale or rgb; got {self.color_mode!r}")
        if not 0.0 <= self.validation_fraction < 1.0 or not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(
                "validation_fraction and test_fraction must be in [0, 1); "
                f"got {self.validation_fraction!r} and {self.test_fraction!r}"
            )
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                "validation_fraction + test_fraction must leave at least 10% for training; "
                f"got {self.validation_fraction + self.test_fraction:.2f}"
            )

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return _thaw(dataclasses.asdict(self))

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
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if not 0.0 < float(self.learning_rate) <= 10.0:
            raise ValueError(f"learning_rate must be in (0, 10]; got {self.learning_rate!r}")
        if int(self.batch_size) < 1 or int(self.epochs) < 1:
            raise ValueError(
                f"batch_size and epochs must be at least 1; got {self.batch_size!r} and {self.epochs!r}"
            )
        if self.early_stopping_monitor not in ("val_loss", "val_accuracy", "loss", "accuracy"):
            raise ValueError(
                "early_stopping_monitor must be val_loss, val_accuracy, loss or accuracy; "
                f"got {self.early_stopping_monitor!r}"
            )
        if float(self.l2) < 0:
            raise ValueError(f"l2 must be zero or positive; got {self.l2!r}")

    def to_dict(self) -> JsonDict:
        """The JSON form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSettings:
        """Read from the JSON form."""
        return _settings_from_dict(cls, data, "training settings")

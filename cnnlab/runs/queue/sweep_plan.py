"""Planning a sweep: which settings vary, over which values, and the runs that makes.

An `Axis` is one setting and the values it takes: a training setting by its `TrainingSettings`
name (`learning_rate`, `batch_size`, `optimizer`, ...), `dropout` (the rate of every dropout
layer), or one parameter of one layer by its 1-based position (`layer 3.filters`). `plan` expands
the axes into a grid (every combination) or a random sample of it (`sample` runs, reproducible by
`seed`) and checks every planned run before any is queued: each value against the settings'
rules and the layer catalogue, and each model against the dataset (shapes, classes, budget).
Anything wrong raises `SweepError` naming the setting and the value.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cnnlab.errors import SpecError, SweepError
from cnnlab.model import catalogue, checks, shapes
from cnnlab.specs import ModelSpec, TrainingSettings

Value = bool | int | float | str
MAX_RUNS = 64  # more than this is not a sweep one server should queue at once
# A sample is drawn from the grid's indices as 64-bit integers (`random.sample`, `numpy.unravel_index`).
MAX_SAMPLED_GRID = int(np.iinfo(np.int64).max)
DROPOUT = "dropout"
DROPOUT_TYPES = ("Dropout", "SpatialDropout2D")
LAYER_PREFIX = "layer "
# Every scalar training setting can be swept; augmentation is a group set on the Data page.
TRAINING_SETTINGS = tuple(
    item.name for item in dataclasses.fields(TrainingSettings) if item.name != "augmentation"
)


def setting_type(setting: str) -> type:
    """The Python type of a training setting's default (bool before int: bool is an int)."""
    return type(getattr(TrainingSettings(), setting))


def setting_name(setting: str) -> str:
    """A setting as written (`learning-rate`, ` layer 3.filters`) in the form axes use (`learning_rate`)."""
    return setting.strip().replace("-", "_") if not setting.startswith(LAYER_PREFIX) else setting.strip()


def _layer_position(setting: str) -> int | None:
    """The 1-based layer of a `layer N.parameter` setting, else None."""
    if not setting.startswith(LAYER_PREFIX) or "." not in setting:
        return None
    position = setting[len(LAYER_PREFIX) :].split(".", 1)[0]
    return int(position) if position.isdigit() and int(position) > 0 else None


def check_setting(setting: str) -> None:
    """SweepError unless `setting` is one a sweep can vary: a training setting, dropout or a layer's parameter."""
    if setting not in TRAINING_SETTINGS and setting != DROPOUT and _layer_position(setting) is None:
        raise SweepError(
            f"{setting!r} is not a setting a sweep can vary. Use a training setting "
            f"({', '.join(TRAINING_SETTINGS)}), 'dropout', or 'layer N.parameter' (e.g. 'layer 3.filters')."
        )


def parse_value(text: str, kind: type | None) -> Value:
    """One value from text: as `kind` (bool, int, float or str) or, without one, the JSON scalar it reads as."""
    text = text.strip()
    if kind is bool or kind is None:
        words = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
        if text.lower() in words:
            return words[text.lower()]
        if kind is bool:
            raise ValueError("is not true or false")
    if kind is int:
        try:
            number = float(text)
        except ValueError:
            raise ValueError("is not a whole number") from None
        if not number.is_integer():
            raise ValueError("is not a whole number")
        return int(number)
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("is not a number") from None
    if kind is str:
        return text
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text
    return parsed if isinstance(parsed, bool | int | float | str) else text


def format_value(value: Value) -> str:
    """A value as a label shows it: 0.001, 32, adam, true."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Axis:
    """One swept setting and its values, in the order given (repeats removed)."""

    setting: str
    values: tuple[Value, ...]

    def __post_init__(self) -> None:
        unique = tuple(dict.fromkeys(self.values))
        if not unique:
            raise SweepError(f"{self.setting} needs at least one value; got none. List them as 1e-3,3e-3.")
        object.__setattr__(self, "values", unique)
        check_setting(self.setting)

    @property
    def layer_position(self) -> int | None:
        """The 1-based layer of a `layer N.parameter` axis, else None."""
        return _layer_position(self.setting)

    @property
    def parameter(self) -> str | None:
        """The layer parameter of a `layer N.parameter` axis ("rate" for dropout), else None."""
        if self.setting == DROPOUT:
            return "rate"
        return self.setting.split(".", 1)[1] if self.layer_position is not None else None

    def value_of(self, spec: ModelSpec, training: TrainingSettings) -> Value | None:
        """The value this axis has in a run's model and training settings."""
        if self.setting in TRAINING_SETTINGS:
            value: Value = getattr(training, self.setting)
            return value
        positions = self.positions(spec)
        if not positions or self.parameter is None:
            return None
        found = spec.layers[positions[0] - 1].get(self.parameter)
        return found if isinstance(found, bool | int | float | str) else None

    def positions(self, spec: ModelSpec) -> list[int]:
        """The 1-based positions of the layers this axis changes."""
        if self.setting == DROPOUT:
            return [index for index, layer in enumerate(spec.layers, 1) if layer.type in DROPOUT_TYPES]
        position = self.layer_position
        return [position] if position is not None and position <= len(spec.layers) else []


def axis(setting: str, text: str | Sequence[Value]) -> Axis:
    """An axis from comma-separated text ("1e-3, 3e-3") or a list of values; SweepError names a bad value."""
    setting = setting_name(setting)
    if not isinstance(text, str):
        return Axis(setting, tuple(text))
    kind = setting_type(setting) if setting in TRAINING_SETTINGS else None
    if setting == DROPOUT:
        kind = float
    values: list[Value] = []
    for item in (part for part in text.split(",") if part.strip()):
        try:
            values.append(parse_value(item, kind))
        except ValueError as problem:
            raise SweepError(
                f"The value {item.strip()!r} for {setting} {problem}. List values separated by commas, "
                f"e.g. {'32,64' if kind is int else '1e-3,3e-3' if kind is float else 'adam,sgd'}."
            ) from None
    return Axis(setting, tuple(values))


def layer_axis(text: str) -> Axis:
    """An axis from the CLI's `N.parameter=v1,v2` (e.g. `3.filters=16,32`)."""
    target, separator, values = text.partition("=")
    position, dot, parameter = target.strip().partition(".")
    if not separator or not dot or not position.isdigit() or not parameter:
        raise SweepError(
            f"--layer takes POSITION.PARAMETER=VALUES, e.g. 3.filters=16,32 (layer 3, counted from 1); got {text!r}."
        )
    return axis(f"{LAYER_PREFIX}{int(position)}.{parameter.strip()}", values)


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: the value of each axis, and the model and training settings that gives."""

    values: Mapping[str, Value]
    spec: ModelSpec
    training: TrainingSettings

    def label(self) -> str:
        """`learning_rate=0.001, batch_size=32`."""
        return ", ".join(f"{setting}={format_value(value)}" for setting, value in self.values.items())


@dataclass(frozen=True)
class Plan:
    """The runs of a sweep, in grid order; `sample` and `seed` when it is a random sample of the grid."""

    axes: tuple[Axis, ...]
    runs: tuple[PlannedRun, ...]
    grid_size: int
    sample: int | None = None
    seed: int = 0


def grid_size(axes: Sequence[Axis]) -> int:
    """How many combinations the axes make."""
    return math.prod(len(item.values) for item in axes) if axes else 0


def planned_count(axes: Sequence[Axis], sample: int | None = None) -> int:
    """How many runs a sweep over `axes` plans (a sample of at most the grid)."""
    return min(sample, grid_size(axes)) if sample else grid_size(axes)


def _combinations(axes: Sequence[Axis], indices: Sequence[int] | None = None) -> list[dict[str, Value]]:
    """The grid's combinations in order, the last axis varying fastest; with `indices`, only those.

    The whole grid comes from `itertools.product`; a sample takes its combinations by index through
    `numpy.unravel_index`, because walking `product` up to an index would step through a grid that may
    hold billions of combinations when only a few dozen are wanted.
    """
    settings = [item.setting for item in axes]
    if indices is None:
        return [
            dict(zip(settings, values, strict=True))
            for values in itertools.product(*(item.values for item in axes))
        ]
    positions = np.unravel_index(np.asarray(indices, dtype=np.int64), [len(item.values) for item in axes])
    return [
        {
            item.setting: item.values[int(axis_positions[row])]
            for item, axis_positions in zip(axes, positions, strict=True)
        }
        for row in range(len(indices))
    ]


def _changed(training: TrainingSettings, changes: Mapping[str, Value]) -> TrainingSettings:
    """`training` with some settings changed, checked (SpecError names a refused value)."""
    return TrainingSettings.from_dict({**training.to_dict(), **changes})


def apply(
    spec: ModelSpec, training: TrainingSettings, axes: Sequence[Axis], values: Mapping[str, Value]
) -> tuple[ModelSpec, TrainingSettings]:
    """The model and training settings with the axes' values set (SpecError for a refused setting)."""
    changes = {setting: value for setting, value in values.items() if setting in TRAINING_SETTINGS}
    layers = list(spec.layers)
    for item in axes:
        if item.setting in TRAINING_SETTINGS or item.parameter is None:
            continue
        for position in item.positions(spec):
            layers[position - 1] = layers[position - 1].with_params(**{item.parameter: values[item.setting]})
    return spec.replace_layers(layers), _changed(training, changes)


def check_axis(spec: ModelSpec, training: TrainingSettings, item: Axis) -> None:
    """Refuse an axis whose setting or one of whose values cannot be used, naming the value."""
    if item.setting in TRAINING_SETTINGS:
        for value in item.values:
            try:
                _changed(training, {item.setting: value})
            except SpecError as error:
                raise SweepError(
                    f"The value {format_value(value)!r} for {item.setting} is refused: {error}"
                ) from None
        return
    positions = item.positions(spec)
    if not positions:
        if item.setting == DROPOUT:
            raise SweepError(
                "The model has no Dropout layer, so a dropout sweep changes nothing. Add one on the Model "
                "page, or sweep another layer's parameter (e.g. --layer 3.filters=16,32)."
            )
        raise SweepError(
            f"{item.setting}: the model has {len(spec.layers)} layers, counted from 1; got layer {item.layer_position}."
        )
    parameter = item.parameter or ""
    for position in positions:
        layer = spec.layers[position - 1]
        try:
            catalogue.layer_type(layer.type).parameter(parameter)
        except SpecError as error:
            raise SweepError(f"{item.setting}: layer {position} is a {layer.type}. {error}") from None
        for value in item.values:
            problems = checks.parameter_problems(position, layer.with_params(**{parameter: value}))
            if problems:
                raise SweepError(
                    f"The value {format_value(value)!r} for {item.setting} is refused: {problems[0].message}"
                )


def plan(
    spec: ModelSpec,
    training: TrainingSettings,
    axes: Sequence[Axis],
    *,
    sample: int | None = None,
    seed: int = 0,
    limit: int = MAX_RUNS,
    num_classes: int | None = None,
    dataset_input_shape: Sequence[int] | None = None,
) -> Plan:
    """Every run of a sweep over `axes` from `spec` and `training`, each checked (SweepError otherwise).

    Without `sample` the plan is the whole grid; with it, `sample` combinations drawn from the grid
    without repeats by a generator seeded with `seed` (the same seed plans the same runs). At most
    `limit` runs. With `num_classes` and `dataset_input_shape` each model is checked against the data.
    """
    if not axes:
        raise SweepError("A sweep needs at least one setting with values, e.g. learning_rate 1e-3,3e-3.")
    settings = [item.setting for item in axes]
    if len(set(settings)) != len(settings):
        raise SweepError(f"Each setting can be swept once; got {settings}.")
    for item in axes:
        check_axis(spec, training, item)
    total = grid_size(axes)
    sizes = " x ".join(str(len(item.values)) for item in axes)
    if sample is None:
        if total > limit:
            raise SweepError(
                f"This grid would start {total} runs ({sizes}); a sweep has at most {limit}. "
                f"Use fewer values, or a random sample of at most {limit} of them."
            )
        combinations = _combinations(axes)
    else:
        if not 1 <= sample <= limit:
            raise SweepError(f"A random sample takes 1 to {limit} runs; got {sample}.")
        if sample > total:
            raise SweepError(
                f"A random sample of {sample} runs needs at least {sample} combinations; the grid has {total} ({sizes})."
            )
        if total > MAX_SAMPLED_GRID:
            raise SweepError(
                f"A grid of {total:.3g} combinations ({sizes}) is too large to sample from; the most is "
                f"{MAX_SAMPLED_GRID:.3g}. Sweep fewer settings or fewer values of each."
            )
        combinations = _combinations(axes, sorted(random.Random(seed).sample(range(total), sample)))
    analyses: dict[tuple[ModelSpec, int], shapes.Analysis] = {}
    runs = [
        planned_run(
            spec,
            training,
            axes,
            values,
            num_classes=num_classes,
            dataset_input_shape=dataset_input_shape,
            analyses=analyses,
        )
        for values in combinations
    ]
    return Plan(tuple(axes), tuple(runs), total, sample, seed)


def planned_run(
    spec: ModelSpec,
    training: TrainingSettings,
    axes: Sequence[Axis],
    values: Mapping[str, Value],
    *,
    num_classes: int | None = None,
    dataset_input_shape: Sequence[int] | None = None,
    analyses: dict[tuple[ModelSpec, int], shapes.Analysis] | None = None,
) -> PlannedRun:
    """The run with the axes set to `values`, checked against the data (SweepError naming the values).

    `analyses` keeps the shape analyses of models already checked, for a plan of many runs.
    """
    label = ", ".join(f"{setting}={format_value(value)}" for setting, value in values.items())
    try:
        run_spec, run_training = apply(spec, training, axes, values)
    except SpecError as error:
        raise SweepError(f"The run with {label} is refused: {error}") from None
    analyses = {} if analyses is None else analyses
    key = (run_spec, run_training.batch_size)
    if key not in analyses:
        analyses[key] = shapes.analyse(
            run_spec,
            num_classes=num_classes,
            dataset_input_shape=dataset_input_shape,
            budget=checks.Budget(batch_size=run_training.batch_size),
        )
    if analyses[key].errors:
        raise SweepError(f"The run with {label} cannot be trained: {analyses[key].errors[0].message}")
    return PlannedRun(values, run_spec, run_training)

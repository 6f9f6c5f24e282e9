"""A layer type's constructor arguments (its parameters): kinds, ranges and accepted values.

`Parameter` describes one Keras constructor argument with its default, range and help text;
`LayerType` groups them under a Keras class. `check_value` says what is wrong with a value in a
phrase the Model page and `checks` put into their messages. The table of supported layer types
built from these is `catalogue`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cnnlab.errors import SpecError

# Parameter kinds: int, float, choice, bool, size (an int or an [height, width] pair) and
# regularizer (null or {"l1": float, "l2": float}).
KINDS = ("int", "float", "choice", "bool", "size", "regularizer")


@dataclass(frozen=True)
class Parameter:
    """One constructor argument of a layer type, with its range and a learner's explanation."""

    name: str
    kind: str
    default: Any
    help: str
    suggested: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    exclusive_maximum: bool = False
    required: bool = False

    @property
    def initial(self) -> Any:
        """The value a newly added layer starts with."""
        return self.default if self.suggested is None else self.suggested


@dataclass(frozen=True)
class LayerType:
    """A supported layer: its Keras class name, family, one-line explanation and parameters."""

    name: str
    category: str
    summary: str
    parameters: tuple[Parameter, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)  # always passed to Keras
    backbone: bool = False

    def parameter(self, name: str) -> Parameter:
        """The parameter called `name`; SpecError if this type has none."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        known = ", ".join(item.name for item in self.parameters) or "none"
        raise SpecError(f"{self.name} has no parameter {name!r}; its parameters are: {known}.")

    def initial_params(self) -> dict[str, Any]:
        """Parameters for a newly added layer of this type."""
        return {
            item.name: item.initial for item in self.parameters if item.required or item.suggested is not None
        }


def as_pair(value: Any) -> tuple[int, int]:
    """A Keras size argument (an int or a pair) as a (height, width) pair."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _check_number(parameter: Parameter, value: Any) -> str | None:
    """A problem with a numeric value, or None when it is fine."""
    whole = parameter.kind == "int"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (whole and not isinstance(value, int))
    ):
        return f"must be {'a whole number' if whole else 'a number'}"
    if parameter.minimum is not None and value < parameter.minimum:
        return f"must be at least {parameter.minimum:g}"
    if parameter.maximum is not None:
        if parameter.exclusive_maximum and value >= parameter.maximum:
            return f"must be below {parameter.maximum:g}"
        if value > parameter.maximum:
            return f"must be at most {parameter.maximum:g}"
    return None


def check_value(parameter: Parameter, value: Any) -> str | None:
    """What is wrong with `value` for `parameter` (a phrase such as "must be at least 1"), or None."""
    if value is None:
        if parameter.required:
            return "is required"
        if parameter.kind == "size" and parameter.default is not None:
            return "must be a whole number or a pair of whole numbers [height, width], not null"
        return None
    if parameter.kind in ("int", "float"):
        return _check_number(parameter, value)
    if parameter.kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if parameter.kind == "choice":
        if parameter.name == "activation" and value is None:
            return None
        if value not in parameter.choices:
            return "must be one of " + ", ".join(
                "none" if item is None else str(item) for item in parameter.choices
            )
        return None
    if parameter.kind == "size":
        pair = value if isinstance(value, list | tuple) else [value]
        if len(pair) not in (1, 2) or not all(
            isinstance(item, int) and not isinstance(item, bool) for item in pair
        ):
            return "must be a whole number or a pair of whole numbers [height, width]"
        for item in pair:
            problem = _check_number(
                Parameter(
                    parameter.name, "int", None, "", minimum=parameter.minimum, maximum=parameter.maximum
                ),
                item,
            )
            if problem:
                return problem
        return None
    if parameter.kind == "regularizer":
        if not isinstance(value, Mapping) or not value or set(value) - {"l1", "l2"}:
            return 'must be null or an object like {"l1": 0.0, "l2": 0.0001}'
        for key, amount in value.items():
            if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
                return f"must have a non-negative number for {key}"
        return None
    raise ValueError(f"Unknown parameter kind {parameter.kind!r} in the catalogue")

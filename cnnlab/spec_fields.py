"""Checks of one field of a spec dataclass, with messages that say what to use instead.

`cnnlab.specs` calls these from each dataclass's `__post_init__`, so a malformed value raises
`SpecError` naming the field, the allowed values, the value received and a default to fall back
on, whether it came from JSON, a link, the CLI or a page.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

from cnnlab.errors import SpecError
from cnnlab.setting_ranges import Range, bound_text


def _interval(minimum: float | None, maximum: float | None, above: bool, below: bool) -> str:
    """A range in words or interval notation: " at least 1", " above 0", " in [0, 1)"."""
    if maximum is None:
        return "" if minimum is None else f" {'above' if above else 'at least'} {bound_text(minimum)}"
    low = "-inf" if minimum is None else bound_text(minimum)
    return f" in {'(' if above else '['}{low}, {bound_text(maximum)}{')' if below else ']'}"


def number(
    owner: Any,
    name: str,
    *,
    whole: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    above: bool = False,
    below: bool = False,
    optional: bool = False,
) -> None:
    """Check the numeric field `name` of dataclass `owner` and store it as a plain int or float.

    `above` and `below` make the minimum and maximum exclusive. SpecError names the field, the
    range, the value received and the default to fall back on.
    """
    value = getattr(owner, name)
    if value is None and optional:
        return
    kind = "a whole number" if whole else "a number"
    wanted = numbers.Integral if whole else numbers.Real
    fits = isinstance(value, wanted) and not isinstance(value, bool)
    if fits and whole:
        value = int(value)
    elif fits:
        # A float field holds a float, also when the JSON wrote it without a decimal point (0, 1): a
        # number widget refuses to mix an int value with float bounds.
        try:
            value = float(value)
        except OverflowError:  # An int too large for a float is outside every range.
            fits = False
        else:
            fits = math.isfinite(value)
    if fits and minimum is not None:
        fits = value > minimum if above else value >= minimum
    if fits and maximum is not None:
        fits = value < maximum if below else value <= maximum
    if not fits:
        default = next(item.default for item in dataclasses.fields(owner) if item.name == name)
        empty = " or null" if optional else ""
        advice = "Leave it out (null) for the default." if default is None else f"Use e.g. {default!r}."
        raise SpecError(
            f"{name} must be {kind}{_interval(minimum, maximum, above, below)}{empty}; got {value!r}. {advice}"
        )
    object.__setattr__(owner, name, value)


# False while settings recorded by an earlier release are read back (`ranges_as_recorded`).
_CHECK_RANGES: contextvars.ContextVar[bool] = contextvars.ContextVar("check_ranges", default=True)


@contextlib.contextmanager
def ranges_as_recorded() -> Iterator[None]:
    """Read settings without refusing values outside today's ranges, only malformed ones.

    A run recorded before a range was narrowed (say 600 epochs from the CLI, when epochs had no
    upper end) must still open; new settings made from it (a continue, a fork) are checked again.
    """
    token = _CHECK_RANGES.set(False)
    try:
        yield
    finally:
        _CHECK_RANGES.reset(token)


def within(owner: Any, name: str, limits: Range) -> None:
    """Check the numeric field `name` of `owner` against its range (`cnnlab.setting_ranges`)."""
    if not _CHECK_RANGES.get():
        number(owner, name, whole=limits.whole)
        return
    number(owner, name, whole=limits.whole, minimum=limits.minimum, maximum=limits.maximum)


def choice(owner: Any, name: str, choices: tuple[Any, ...]) -> None:
    """Check that the field `name` of `owner` is one of `choices`."""
    value = getattr(owner, name)
    if not any(value == option and type(value) is type(option) for option in choices):
        listed = ", ".join("null" if option is None else str(option) for option in choices)
        raise SpecError(f"{name} must be one of {listed}; got {value!r}. Choose one of those.")


def flag(owner: Any, name: str) -> None:
    """Check that the field `name` of `owner` is true or false."""
    value = getattr(owner, name)
    if not isinstance(value, bool):
        raise SpecError(f"{name} must be true or false; got {value!r}. Use true or false (not quoted).")


def text_keyed(value: Any, what: str, example: str) -> dict[str, Any]:
    """`value` as a dict with string keys; SpecError if it is not a JSON object."""
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise SpecError(f"{what} must be a JSON object with text keys, e.g. {example}; got {value!r}.")
    return dict(value)

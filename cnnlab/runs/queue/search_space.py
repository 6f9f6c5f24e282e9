"""A sweep's search space: settings with listed values (`sweep_plan.Axis`) and settings over a range.

A `Range` is one setting between two bounds: a whole-number range (`filters` 16..64, `batch_size`
16..128), a float range (`dropout` 0.1..0.5), either on a log scale (`learning_rate` 1e-4..1e-2 log,
drawn evenly in the exponent). In text a range is written `LOW..HIGH`, with ` log` (or `:log`) after it
for a log scale; anything else is a comma-separated list of values. `values` reads either.

Ranges are searched by a sampler (random or TPE, `cnnlab.runs.queue.studies`); a grid needs lists.
Each range is checked like a list of its two bounds (the settings' rules and the layer catalogue), so
a refused bound names itself before anything is queued; a range whose low end is not below its high
end, or a log range that reaches zero or below, raises `SweepError` saying what to write instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cnnlab.errors import SweepError
from cnnlab.runs.queue import sweep_plan
from cnnlab.runs.queue.sweep_plan import Axis, Value

RANGE_MARK = ".."
LOG_WORDS = (" log", ":log")


@dataclass(frozen=True)
class Range:
    """One swept setting between `low` and `high` (inclusive): whole numbers or floats, on a log scale or not."""

    setting: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        sweep_plan.check_setting(self.setting)
        written = self.text()
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise SweepError(f"The range {written} for {self.setting} needs two finite numbers.")
        if self.low >= self.high:
            raise SweepError(
                f"The range {written} for {self.setting} needs its low end below its high end; "
                f"write it as LOW..HIGH, e.g. {self._example()}, or list one value instead."
            )
        if self.log and self.low <= 0:
            raise SweepError(
                f"The log range {written} for {self.setting} starts at {sweep_plan.format_value(self.low)}; "
                f"a log scale needs numbers above 0. Start it at a small positive number, e.g. {self._example()}."
            )
        if self.integer and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise SweepError(
                f"{self.setting} takes whole numbers; got the range {written}. Write it as e.g. 16..64."
            )

    def _example(self) -> str:
        return "1e-4..1e-2 log" if self.log or not self.integer else "16..64"

    def text(self) -> str:
        """The range as it is written: `0.0001..0.01 log`, `16..64`."""
        whole = self.integer and float(self.low).is_integer() and float(self.high).is_integer()
        low, high = (
            (str(int(self.low)), str(int(self.high)))
            if whole
            else (sweep_plan.format_value(float(self.low)), sweep_plan.format_value(float(self.high)))
        )
        return f"{low}{RANGE_MARK}{high}{' log' if self.log else ''}"

    def bounds(self) -> Axis:
        """The range's two ends as a list, for the checks every listed value gets."""
        if self.integer:
            return Axis(self.setting, (int(self.low), int(self.high)))
        return Axis(self.setting, (float(self.low), float(self.high)))

    def to_json(self) -> dict[str, Value]:
        """The range as the sweep's stored search keeps it."""
        return {
            "setting": self.setting,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "integer": self.integer,
        }

    @classmethod
    def from_json(cls, stored: Mapping[str, object]) -> Range:
        """The range `to_json` stored."""
        return cls(
            str(stored["setting"]),
            float(str(stored["low"])),
            float(str(stored["high"])),
            bool(stored.get("log")),
            bool(stored.get("integer")),
        )


def _is_whole(setting: str, low: str, high: str) -> bool:
    """Whether a setting's range is of whole numbers: an integer training setting, or a layer
    parameter written with whole numbers (`16..64`)."""
    if setting in sweep_plan.TRAINING_SETTINGS:
        return sweep_plan.setting_type(setting) is int
    if setting == sweep_plan.DROPOUT:
        return False
    return all(part.lstrip("-").isdigit() for part in (low, high))


def parse_range(setting: str, text: str) -> Range:
    """A range from `LOW..HIGH` text, with ` log` (or `:log`) after it for a log scale; SweepError otherwise."""
    setting = sweep_plan.setting_name(setting)
    written = text.strip()
    log = written.lower().endswith(LOG_WORDS)
    body = written[: -len(LOG_WORDS[0])] if log else written
    low_text, _, high_text = (part.strip() for part in body.partition(RANGE_MARK))
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise SweepError(
            f"The range {written!r} for {setting} is not LOW..HIGH with two numbers; "
            "write e.g. 1e-4..1e-2 log (a log scale) or 16..64."
        ) from None
    return Range(setting, low, high, log, _is_whole(setting, low_text, high_text))


def values(setting: str, text: str) -> Axis | Range:
    """A setting's values from text: a range (`1e-4..1e-2 log`) or a comma-separated list (`16, 32`)."""
    if RANGE_MARK in text:
        return parse_range(setting, text)
    return sweep_plan.axis(setting, text)


def describe(item: Axis | Range) -> str:
    """`learning_rate in 0.0001..0.01 log`, `batch_size in {16, 32}`."""
    if isinstance(item, Range):
        return f"{item.setting} in {item.text()}"
    return f"{item.setting} in {{{', '.join(sweep_plan.format_value(value) for value in item.values)}}}"


def listed_only(items: Sequence[Axis | Range]) -> list[Axis]:
    """The items as lists of values; SweepError for a range (a grid or a sample of one tries listed values)."""
    for item in items:
        if isinstance(item, Range):
            raise SweepError(
                f"{item.setting} is a range ({item.text()}); a grid tries listed values. List them "
                "(e.g. 1e-3,3e-3,1e-2), or let a search (TPE or random) pick values from the range."
            )
    return [item for item in items if isinstance(item, Axis)]

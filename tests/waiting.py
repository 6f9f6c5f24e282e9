"""Waiting for a condition in tests, with a deadline that only guards against a hang.

`wait_until(condition, "what we wait for")` polls `condition()` until it is true. The deadline is
generous (a loaded 2-core machine may run two test suites at once) and is never the assertion:
when it passes, the test fails with a message saying what never happened and the last value seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEADLINE_SECONDS = 120.0
POLL_SECONDS = 0.02


def wait_until(
    condition: Callable[[], object], description: str, deadline_seconds: float = DEADLINE_SECONDS
) -> object:
    """Poll `condition()` until it returns something true and return that; fail if it never does."""
    give_up = time.monotonic() + deadline_seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(
                f"Waited {deadline_seconds:g} s for {description}; it never happened (last value: {value!r})."
            )
        time.sleep(POLL_SECONDS)

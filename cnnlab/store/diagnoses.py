"""A diagnosis as the store keeps it: one finding about a run (kind, epoch, cause, fix), a row of its own.

The rules that make diagnoses are `cnnlab.runs.views.diagnosis`; the worker's callback records
each through `Store.add_diagnosis`, which writes the row and, for the event log a person reads,
the line `message()` gives, in one transaction. Views, pages and the CLI read them back with
`Store.diagnoses(run_id)` (or a `RunReader`'s), never from the event text. Nothing here touches SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.errors import RunError

DIVERGED, NOT_LEARNING, OVERFITTING, PLATEAU = "diverged", "not learning", "overfitting", "plateau"
KINDS = (DIVERGED, NOT_LEARNING, OVERFITTING, PLATEAU)


@dataclass(frozen=True)
class Diagnosis:
    """One finding about a run: its kind (one of `KINDS`), the epoch it was made at, cause and fix."""

    kind: str
    epoch: int
    cause: str
    fix: str

    @property
    def level(self) -> str:
        """The event level: `error` for a divergence (the run ends), `warning` otherwise."""
        return "error" if self.kind == DIVERGED else "warning"

    @property
    def title(self) -> str:
        """The kind as a heading: "Diverged", "Not learning", "Overfitting", "Plateau"."""
        return self.kind.capitalize()

    def message(self) -> str:
        """The event-log line a person reads: `[kind, epoch N] cause Fix: fix`."""
        return f"[{self.kind}, epoch {self.epoch}] {self.cause} Fix: {self.fix}"


def check_kind(kind: str) -> str:
    """Return `kind` if it is one of `KINDS`, else raise RunError naming them."""
    if kind not in KINDS:
        raise RunError(f"Unknown diagnosis kind {kind!r}; the kinds are {', '.join(KINDS)}.")
    return kind

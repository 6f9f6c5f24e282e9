"""The recorded curves of a sweep-like set of runs (tests/data/sweep_curves.json, written once by
`python benchmarks/not_learning.py record`), read back as the diagnosis rules see them, and the
"not learning" rule replayed on them epoch by epoch, as the worker's callback applies it.

A run "learned" when, by its last epoch, its best validation accuracy was at least `LEARNED_MARGIN`
above chance or its training loss was clearly below the loss of guessing (below
`LEARNED_SHARE_OF_GUESSING` of ln(classes)): hindsight the rule does not have when it judges an epoch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.runs.views import diagnosis

CURVES = Path(__file__).resolve().parent / "data" / "sweep_curves.json"
# Runs the rule was not tuned on: other seeds, datasets and optimizers (`benchmarks/not_learning.py --held-out`).
HELD_OUT = Path(__file__).resolve().parent / "data" / "sweep_curves_held_out.json"
LEARNED_MARGIN = 0.2  # 40% or more on five classes (chance 20%) is learning, not noise.
LEARNED_SHARE_OF_GUESSING = 0.95  # A training loss 5% below guessing's is learning too.

Rule = Callable[[Sequence[diagnosis.EpochFigures], diagnosis.RunFacts], diagnosis.Diagnosis | None]


@dataclass(frozen=True)
class RecordedRun:
    """One recorded run: its settings, what the rules know about it, and its epochs."""

    settings: dict[str, Any]
    facts: diagnosis.RunFacts
    history: tuple[diagnosis.EpochFigures, ...]

    @property
    def learned(self) -> bool:
        """True when, by its last epoch, it had clearly learned (see the module's docstring)."""
        best = max((figures.val_accuracy or 0.0) for figures in self.history)
        below = self.history[-1].loss < LEARNED_SHARE_OF_GUESSING * self.facts.guessing_loss
        return best >= self.facts.chance_accuracy + LEARNED_MARGIN or below

    def first_alarm(self, rule: Rule) -> int | None:
        """The first epoch at which `rule` fires on the epochs recorded so far, or None."""
        for count in range(1, len(self.history) + 1):
            found = rule(self.history[:count], self.facts)
            if found is not None:
                return found.epoch
        return None


def load(path: Path = CURVES) -> list[RecordedRun]:
    """The recorded runs in `path`."""
    runs = []
    for run in json.loads(path.read_text(encoding="utf-8"))["runs"]:
        rate = float(run["learning_rate"])
        facts = diagnosis.RunFacts(
            num_classes=int(run["classes"]),
            chance_accuracy=float(run["chance_accuracy"]),
            first_loss=float(run.get("first_loss", math.nan)),
            batches_per_epoch=int(run["batches_per_epoch"]),
        )
        history = tuple(
            diagnosis.EpochFigures(
                epoch=int(epoch["epoch"]),
                loss=float(epoch["loss"]),
                accuracy=float(epoch["accuracy"]),
                val_loss=float(epoch["val_loss"]),
                val_accuracy=float(epoch["val_accuracy"]),
                learning_rate=rate,
            )
            for epoch in run["epochs"]
        )
        runs.append(RecordedRun(dict(run), facts, history))
    return runs


@dataclass(frozen=True)
class Tally:
    """A rule's record on the runs: false alarms (fired on a run that learned) and misses."""

    false_alarms: int
    learned: int
    misses: int
    not_learned: int
    alarm_epochs: tuple[int, ...]  # When it fired on the runs that never learned.


def tally(runs: Sequence[RecordedRun], rule: Rule) -> Tally:
    """Replay `rule` on every run."""
    alarms = [(run.learned, run.first_alarm(rule)) for run in runs]
    return Tally(
        false_alarms=sum(learned and epoch is not None for learned, epoch in alarms),
        learned=sum(learned for learned, _ in alarms),
        misses=sum(not learned and epoch is None for learned, epoch in alarms),
        not_learned=sum(not learned for learned, _ in alarms),
        alarm_epochs=tuple(epoch for learned, epoch in alarms if not learned and epoch is not None),
    )


def old_not_learning(
    history: Sequence[diagnosis.EpochFigures], facts: diagnosis.RunFacts
) -> diagnosis.Diagnosis | None:
    """The rule before issue 23, for the comparison: after 3 epochs, accuracy within 10 points of
    chance and the loss moved less than 2% over them."""
    if len(history) < 3:
        return None
    window = history[-3:]
    if any((figures.val_accuracy or 0.0) > facts.chance_accuracy + 0.1 for figures in window):
        return None
    if abs(window[-1].loss - window[0].loss) >= 0.02 * window[0].loss:
        return None
    return diagnosis.Diagnosis(diagnosis.NOT_LEARNING, window[-1].epoch, "", "")

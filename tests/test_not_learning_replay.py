""" "Not learning" replayed on the recorded curves of 30 sweep-like runs (tests/data/sweep_curves.json,
written once by benchmarks/not_learning.py on five classes of letter renders): no training here.

Issue 23: the old rule (3 epochs at chance, the loss moving under 2%) fired on 19 of 20 sweep runs at
epoch 3, 16 of which went on to learn. Replayed here, it fires on every run at epoch 3 or 4; the rule
now waits until the loss has stayed near the loss of guessing, and stopped falling, for enough epochs
and batches. The rule is replayed too on 24 runs recorded after it was set, which it was not tuned on
(tests/data/sweep_curves_held_out.json).
"""

from __future__ import annotations

from cnnlab.runs.views import diagnosis
from tests import sweep_curves


def test_the_recorded_sweep_shows_the_old_rules_false_alarms() -> None:
    runs = sweep_curves.load()
    found = sweep_curves.tally(runs, sweep_curves.old_not_learning)
    assert len(runs) == 30 and found.learned >= 10 and found.not_learned >= 15
    assert found.false_alarms == found.learned  # Every run that learned was called "not learning"...
    assert max(run.first_alarm(sweep_curves.old_not_learning) or 0 for run in runs) <= 4  # ...by epoch 4.


def test_not_learning_raises_no_false_alarm_and_catches_the_runs_that_never_learn() -> None:
    runs = sweep_curves.load()
    found = sweep_curves.tally(runs, diagnosis.not_learning)
    assert found.false_alarms == 0, found
    assert found.misses <= 1, found  # A run that learns slowly may go unnamed; it is learning.
    assert max(found.alarm_epochs) <= 10, found  # Half of the 20 epochs: still in time to act.


def test_not_learning_holds_on_runs_it_was_not_tuned_on() -> None:
    # 24 runs recorded after the rule was set (benchmarks/not_learning.py --held-out): the generated
    # shapes and new letter renders, new seeds, Adam, AdamW, RMSprop and SGD.
    runs = sweep_curves.load(sweep_curves.HELD_OUT)
    assert {run.settings["dataset"].split(" (")[0] for run in runs} == {"shapes", "glyph renders"}
    found = sweep_curves.tally(runs, diagnosis.not_learning)
    assert found.learned >= 10 and found.not_learned >= 8, found
    assert found.false_alarms == 0 and found.misses == 0, found
    assert max(found.alarm_epochs) <= 10, found

"""Which epochs keep their layer weights: enough to fork from, without 600 KB a epoch forever.

Every whole epoch writes its layer weights (`checkpoints/epoch_0003.weights.npz`); a 151k-parameter
model's are 0.6 MB, so a 100-epoch run kept 60 MB of them. Replay needs none of them (it reads the
per-epoch snapshots: kernels, feature maps, confusion, predictions), continue needs `latest.keras`,
and Evaluate and Predict the `best` and `latest` models. A fork needs one epoch's weights, so these
epochs keep them:

- the milestones 1, 2, 4, 8, 16, ... (a network changes most early on, so early epochs are the ones
  worth forking from; their number grows with the logarithm of the run's length);
- the latest epoch and the best epoch (those the learner sees named everywhere);
- any epoch a run was already forked from.

A 100-epoch run keeps at most 9 epochs' weights: 1, 2, 4, 8, 16, 32, 64, the best and the latest.
This module is the rule alone: no files, no SQL (`cnnlab.runs.worker.artifact_callbacks.Checkpoints`
applies it through the store).
"""

from __future__ import annotations

from collections.abc import Iterable


def is_milestone(epoch: int) -> bool:
    """True for epochs 1, 2, 4, 8, 16, ...: powers of two."""
    return epoch >= 1 and epoch & (epoch - 1) == 0


def epochs_to_drop(
    saved: Iterable[int], latest: int, best: int | None, forked: Iterable[int] = ()
) -> list[int]:
    """The epochs among `saved` whose layer weights are no longer kept, in order."""
    keep = {latest, *forked} | ({best} if best is not None else set())
    return sorted(epoch for epoch in set(saved) if epoch not in keep and not is_milestone(epoch))

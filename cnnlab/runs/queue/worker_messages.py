"""The messages between the local executor and its worker processes: one JSON object per line.

The executor writes `TakeRun` to a waiting worker's standard input; a reused worker writes `RunDone`
on its standard output after each run it ends. Closing the worker's input (end of file) lets it go.
Both sides use `encode` and `decode`, so a message reads the same at either end of the pipe:

    {"kind": "take_run", "run_id": "20261206-142100-ab12"}
    {"kind": "run_done", "run_id": "20261206-142100-ab12", "more": true}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Message", "RunDone", "TakeRun", "decode", "encode"]


@dataclass(frozen=True)
class TakeRun:
    """Executor to worker: train run `run_id` now."""

    run_id: str


@dataclass(frozen=True)
class RunDone:
    """Worker to executor: run `run_id` has ended; `more` if this worker waits for another run."""

    run_id: str
    more: bool


Message = TakeRun | RunDone
_KINDS: dict[str, type[TakeRun] | type[RunDone]] = {"take_run": TakeRun, "run_done": RunDone}
_NAMES = {kind: name for name, kind in _KINDS.items()}


def encode(message: Message) -> bytes:
    """`message` as one line of JSON (ending in a newline), ready to write to a pipe."""
    if isinstance(message, TakeRun):
        fields: dict[str, Any] = {"run_id": message.run_id}
    else:
        fields = {"run_id": message.run_id, "more": message.more}
    return (json.dumps({"kind": _NAMES[type(message)], **fields}) + "\n").encode()


def decode(line: bytes | str) -> Message:
    """The message one line holds; ValueError saying what is wrong with a line that holds none."""
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"A worker message must be one JSON object per line; got {text.strip()!r} ({error}). "
            "Encode messages with cnnlab.runs.queue.worker_messages.encode."
        ) from None
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in _KINDS:
        raise ValueError(
            f"A worker message must have a kind among {sorted(_KINDS)}; got {text.strip()!r}. "
            "Encode messages with cnnlab.runs.queue.worker_messages.encode."
        )
    run_id = data.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(
            f"A {kind} message must carry a run_id that is non-empty text; got {text.strip()!r}."
        )
    if kind == "take_run":
        return TakeRun(run_id)
    more = data.get("more")
    if not isinstance(more, bool):
        raise ValueError(f"A run_done message must carry more: true or false; got {text.strip()!r}.")
    return RunDone(run_id, more)

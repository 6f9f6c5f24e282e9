"""The executor's and the worker's JSON-lines messages: every kind reads back as written, and a
line that is no message is refused with what was wrong."""

from __future__ import annotations

import json
import typing

import pytest

from cnnlab.runs.queue import worker_messages
from cnnlab.runs.queue.worker_messages import RunDone, TakeRun

EVERY_KIND = [TakeRun("20261206-142100-ab12"), RunDone("20261206-142100-ab12", True), RunDone("r", False)]


@pytest.mark.parametrize("message", EVERY_KIND, ids=repr)
def test_every_message_kind_round_trips_as_one_json_line(message: worker_messages.Message) -> None:
    line = worker_messages.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert isinstance(json.loads(line), dict)
    assert worker_messages.decode(line) == message
    assert worker_messages.decode(line.decode()) == message


def test_the_round_trip_covers_every_kind_the_module_defines() -> None:
    assert {type(message) for message in EVERY_KIND} == set(typing.get_args(worker_messages.Message))


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        (b"done 20261206-142100-ab12 more\n", "one JSON object per line"),
        (b'["take_run", "r"]\n', "kind among"),
        (b'{"kind": "hello", "run_id": "r"}\n', "kind among"),
        (b'{"kind": "take_run"}\n', "run_id"),
        (b'{"kind": "take_run", "run_id": ""}\n', "run_id"),
        (b'{"kind": "run_done", "run_id": "r", "more": "yes"}\n', "more: true or false"),
    ],
)
def test_a_line_that_is_no_message_is_refused_saying_what_was_wrong(line: bytes, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        worker_messages.decode(line)
    assert line.decode().strip()[:10] in str(caught.value)

"""`RunRequest`: one value carries a run from whoever asks for it (page, CLI, sweep, fork) to the store."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cnnlab import specs
from cnnlab.classroom.access import RunAccess
from cnnlab.classroom.limits import Limits
from cnnlab.classroom.users import Role, User
from cnnlab.errors import SpecError
from cnnlab.run_request import RunRequest
from cnnlab.share import Setup
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

SPEC = specs.ModelSpec.from_dict(
    {"name": "tiny", "input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]}
)


def test_every_field_of_a_request_reaches_the_stored_run(store: Store) -> None:
    parent = store.create_run(RunRequest(spec=SPEC), status=Status.COMPLETED)
    request = RunRequest(
        spec=SPEC,
        data_settings=specs.DataSettings(dataset="digits", subset=100),
        training_settings=specs.TrainingSettings(epochs=3, learning_rate=0.01),
        name="every field",
        owner="ada",
        exercise="edges",
        sweep="sweep-1",
        exercise_locked=frozenset({"epochs"}),
        exercise_hidden=frozenset({"model_layers", "optimizer"}),
        parent_id=parent.id,
        parent_epoch=1,
    )
    run = store.create_run(request)
    assert run.exercise_control_names("locked") == {"epochs"}
    assert run.exercise_control_names("hidden") == {"model_layers", "optimizer"}
    assert run.status == Status.QUEUED and parent.status == Status.COMPLETED
    assert (run.model_spec(), run.data(), run.training()) == (
        request.spec,
        request.data_settings,
        request.training_settings,
    )
    assert (run.name, run.owner, run.exercise, run.sweep, run.parent_id, run.parent_epoch) == (
        "every field",
        "ada",
        "edges",
        "sweep-1",
        parent.id,
        1,
    )
    # Every field of the request but the probes (a snapshot the scheduler writes) has been checked here.
    checked = {
        "spec",
        "data_settings",
        "training_settings",
        "name",
        "owner",
        "exercise",
        "sweep",
        "exercise_locked",
        "exercise_hidden",
        "parent_id",
    }
    assert {item.name for item in dataclasses.fields(RunRequest)} == checked | {"parent_epoch", "probes"}


def test_a_request_without_a_name_is_named_by_the_store_and_owned_by_the_local_user(store: Store) -> None:
    run = store.create_run(RunRequest(spec=SPEC))
    assert run.owner == "local" and "tiny" in run.name
    assert run.training() == specs.TrainingSettings() and run.data() == specs.DataSettings()


def test_a_setups_request_carries_its_three_parts_and_the_details_given() -> None:
    setup = Setup(data=specs.DataSettings(subset=50), model=SPEC, training=specs.TrainingSettings(epochs=2))
    images = np.zeros((2, 8, 8, 1), np.float32)
    request = RunRequest.from_setup(setup, name="mine", exercise="edges", probes=images)
    assert (request.spec, request.data_settings, request.training_settings) == (
        setup.model,
        setup.data,
        setup.training,
    )
    assert (request.name, request.exercise, request.probes) == ("mine", "edges", images)
    # Probes take no part in comparing requests (arrays have no single truth value).
    assert request == dataclasses.replace(request, probes=None)
    assert request.owned_by("bob").owner == "bob" and request.owner == "local"


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"spec": SPEC.to_dict()}, "spec must be a ModelSpec; got dict"),
        ({"training_settings": {"epochs": 2}}, "training_settings must be a TrainingSettings; got dict"),
        ({"owner": ""}, "owner must be a user id; got ''"),
        ({"parent_id": "abc"}, "parent_id='abc' and parent_epoch=None"),
    ],
)
def test_a_malformed_request_is_refused_saying_what_was_wrong(
    changes: dict[str, object], complaint: str
) -> None:
    with pytest.raises(SpecError, match=complaint.replace("(", r"\(")):
        RunRequest(**{"spec": SPEC, **changes})  # type: ignore[arg-type]


def test_access_makes_the_acting_user_the_owner_whatever_the_request_says(store: Store) -> None:
    ada = User(id="ada", name="Ada", role=Role.STUDENT)
    queued = RunAccess(store, ada, Limits.unlimited()).submit(RunRequest(spec=SPEC, owner="bob"), start=False)
    assert queued.owner == "ada" and queued.status == Status.QUEUED

"""Exercises: a named setup a teacher hands out as a link, with some controls locked or hidden.

An exercise is a name, a setup (data, model, training settings, as `cnnlab.share.Setup`) and the
controls the students may not change: locked ones are shown but disabled, hidden ones are not shown.
It travels as `?exercise=<token>`, packed like a `?setup=` link (`cnnlab.share.pack`, with the same
size guard) and signed with this server's key, so a student who edits the link to unlock a control
gets a clear refusal instead of a different exercise. Like TensorFlow Playground's URL, the link
holds everything; the server keeps no list of exercises.

Nothing here imports Streamlit: the pages map each control to its widgets (`cnnlab.ui.session.controls`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab import share
from cnnlab.classroom.limits import Limits, check_run_size
from cnnlab.errors import BudgetError, SpecError
from cnnlab.specs import TrainingSettings
from cnnlab.store.records import RunRecord

PARAMETER = "exercise"
MAX_NAME_CHARACTERS = 80
# A setup packs into a few KB; a token far longer than any real exercise is refused before unpacking.
MAX_TOKEN_CHARACTERS = 64 * 1024
SIGNATURE_BYTES = 16
KEY_FILE = "exercise_signing.key"


@dataclass(frozen=True)
class Control:
    """A control a teacher can lock or hide: its name, label, page and the setup fields it sets."""

    name: str
    label: str
    page: str
    fields: tuple[tuple[str, str], ...]  # (section, field): section is "data", "model" or "training"


CONTROLS: dict[str, Control] = {
    control.name: control
    for control in (
        Control("dataset", "Dataset", "Data", (("data", "dataset"), ("data", "options"))),
        Control(
            "image_size", "Image size and colour", "Data", (("data", "image_size"), ("data", "color_mode"))
        ),
        Control(
            "subset_and_split",
            "Subset, split and data seed",
            "Data",
            (
                ("data", "subset"),
                ("data", "validation_fraction"),
                ("data", "test_fraction"),
                ("data", "seed"),
            ),
        ),
        Control("augmentation", "Augmentation", "Data", (("training", "augmentation"),)),
        Control("model_layers", "Model layers", "Model", (("model", ""),)),
        Control(
            "optimizer",
            "Optimizer",
            "Train",
            tuple(("training", name) for name in ("optimizer", "momentum", "nesterov", "weight_decay")),
        ),
        Control(
            "learning_rate",
            "Learning rate and schedule",
            "Train",
            tuple(
                ("training", name)
                for name in (
                    "learning_rate",
                    "schedule",
                    "schedule_step_epochs",
                    "schedule_decay_rate",
                    "plateau_factor",
                    "plateau_patience",
                )
            ),
        ),
        Control("batch_size", "Batch size", "Train", (("training", "batch_size"),)),
        Control("epochs", "Epochs", "Train", (("training", "epochs"),)),
        Control("regularisation", "L2 regularisation", "Train", (("training", "l2"),)),
        Control(
            "early_stopping",
            "Early stopping",
            "Train",
            tuple(
                ("training", name)
                for name in (
                    "early_stopping",
                    "early_stopping_monitor",
                    "early_stopping_patience",
                    "restore_best_weights",
                )
            ),
        ),
        Control("training_seed", "Training seed", "Train", (("training", "seed"),)),
    )
}
# The layers are built for one image shape and number of classes: fixing them fixes the data too.
IMPLIED_BY_MODEL = ("dataset", "image_size")


@dataclass(frozen=True)
class Exercise:
    """A named setup with the controls students may see but not change (locked) or not see (hidden)."""

    name: str
    setup: share.Setup
    locked: frozenset[str] = frozenset()
    hidden: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        name = self.name.strip() if isinstance(self.name, str) else self.name
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARACTERS:
            raise SpecError(
                f"An exercise needs a name of 1 to {MAX_NAME_CHARACTERS} characters; got {self.name!r}. "
                "Type a short name such as 'Week 3: dropout'."
            )
        unknown = sorted((self.locked | self.hidden) - set(CONTROLS))
        if unknown:
            raise SpecError(
                f"An exercise can lock or hide only {', '.join(CONTROLS)}; got {unknown}. "
                "Choose controls from that list."
            )
        object.__setattr__(self, "name", name)
        # A control both locked and hidden is hidden: students cannot change it either way.
        object.__setattr__(self, "locked", frozenset(self.locked - self.hidden))

    @property
    def fixed(self) -> frozenset[str]:
        """Every control the students cannot change, locked or hidden."""
        return self.locked | self.hidden


def create(name: str, setup: share.Setup, locked: Iterable[str] = (), hidden: Iterable[str] = ()) -> Exercise:
    """An exercise as a teacher builds it: fixing the model layers also locks the data they were built for."""
    locked_set, hidden_set = frozenset(locked), frozenset(hidden)
    if "model_layers" in locked_set | hidden_set:
        locked_set |= frozenset(IMPLIED_BY_MODEL) - hidden_set
    return Exercise(name, setup, locked_set, hidden_set)


def check_fits(exercise: Exercise, limits: Limits) -> None:
    """Refuse (BudgetError, naming the limit) an exercise whose setup the class limits refuse to students.

    Students start from the exercise's setup and cannot change what it locks or hides: an exercise
    over a limit would be refused to every one of them, with advice to change a control they cannot.
    """
    setup = exercise.setup
    try:
        check_run_size(limits, spec=setup.model, data_settings=setup.data, training_settings=setup.training)
    except BudgetError as error:
        raise BudgetError(
            f"Students could not start the exercise {exercise.name!r}: {error} Change the draft on the "
            "Data, Model or Train page, then make the link again."
        ) from None


def enforce(exercise: Exercise, setup: share.Setup) -> share.Setup:
    """`setup` with every locked or hidden control's fields set to the exercise's values."""
    data: dict[str, Any] = {}
    training: dict[str, Any] = {}
    model = setup.model
    for name in sorted(exercise.fixed):
        for section, field in CONTROLS[name].fields:
            if section == "model":
                model = exercise.setup.model
            elif section == "data":
                data[field] = getattr(exercise.setup.data, field)
            else:
                training[field] = getattr(exercise.setup.training, field)
    return share.Setup(
        dataclasses.replace(setup.data, **data), model, dataclasses.replace(setup.training, **training)
    )


def fields_of(names: Iterable[str]) -> frozenset[tuple[str, str]]:
    """The (section, field) pairs the controls `names` set; ("model", "") stands for every layer."""
    return frozenset(item for name in names if name in CONTROLS for item in CONTROLS[name].fields)


def fixing_control(exercise: Exercise, section: str, field: str) -> Control | None:
    """The locked or hidden control of `exercise` that sets `field` of `section` ("model" for any layer), if any."""
    for name in sorted(exercise.fixed):
        if any(item[0] == section and item[1] in (field, "") for item in CONTROLS[name].fields):
            return CONTROLS[name]
    return None


def _fixed_by_run(run: RunRecord) -> list[str]:
    """The controls the run's exercise locked or hid, in the catalogue's order."""
    fixed = run.exercise_control_names("locked") | run.exercise_control_names("hidden")
    return [name for name in CONTROLS if name in fixed]


def leaves_on_continue(run: RunRecord, epochs: int) -> str | None:
    """Why continuing exercise run `run` to `epochs` epochs in all takes it out of its exercise, or None.

    A run whose exercise locks (or hides) the epochs stays in it only up to the epochs it was started
    with: more epochs would let it win the leaderboard by training longer than the others may.
    """
    if run.exercise is None or "epochs" not in _fixed_by_run(run):
        return None
    locked_epochs = run.training().epochs
    if epochs <= locked_epochs:
        return None
    return f"continued to {epochs} epochs, past the {locked_epochs} the exercise fixes"


def leaves_on_fork(parent: RunRecord, training: TrainingSettings) -> str | None:
    """Why a fork of exercise run `parent` with `training` settings is outside the exercise, or None.

    A fork stays in the exercise when every training setting the exercise fixes keeps the parent's
    value (the exercise's own: its runs start with them). The model and data of a fork are the parent's.
    """
    if parent.exercise is None:
        return None
    recorded = parent.training()
    for name in _fixed_by_run(parent):
        for section, field in CONTROLS[name].fields:
            if section == "training" and getattr(training, field) != getattr(recorded, field):
                return (
                    f"a fork that changes {CONTROLS[name].label.lower()} ({field} "
                    f"{getattr(recorded, field)!r} -> {getattr(training, field)!r}), which the exercise fixes"
                )
    return None


def _signature(body: str, key: bytes) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode(exercise: Exercise, key: bytes) -> str:
    """The exercise as a URL-safe token: the packed exercise, a dot, and its signature with `key`."""
    body = share.pack(
        {
            "name": exercise.name,
            "setup": share.to_payload(exercise.setup),
            "locked": sorted(exercise.locked),
            "hidden": sorted(exercise.hidden),
        }
    )
    return f"{body}.{_signature(body, key)}"


def _unreadable(token: str, why: str) -> SpecError:
    return SpecError(
        f"This exercise link {why} (got {len(token)} characters starting {token[:12]!r}). "
        "Ask your teacher for the link again; your current setup is kept."
    )


def decode(token: str, key: bytes) -> Exercise:
    """The exercise in a token made by `encode` with the same key; SpecError if damaged, forged or too big."""
    if len(token) > MAX_TOKEN_CHARACTERS:
        raise _unreadable(
            token, f"is longer than any exercise ({MAX_TOKEN_CHARACTERS:,} characters) and was refused"
        )
    body, dot, signature = token.rpartition(".")
    if not dot or not body:
        raise _unreadable(token, "is incomplete: it has no signature")
    if not hmac.compare_digest(_signature(body, key).encode(), signature.encode()):
        raise _unreadable(token, "was changed after the teacher made it, or was made on another server")
    try:
        content = share.payload(body)
        names = content["name"], content["locked"], content["hidden"]
        if not all(
            isinstance(item, list) and all(isinstance(text, str) for text in item) for item in names[1:]
        ):
            raise SpecError(f"the locked and hidden controls must be lists of names; got {names[1:]!r}")
        if not isinstance(content["setup"], dict):
            raise SpecError(f"the setup must be an object; got {type(content['setup']).__name__}")
        return Exercise(
            content["name"], share.from_payload(content["setup"]), frozenset(names[1]), frozenset(names[2])
        )
    except KeyError as missing:
        raise _unreadable(token, f"has no {missing} part") from None
    except SpecError as error:
        raise _unreadable(token, f"cannot be used: {error}") from None


def signing_key(home: Path) -> bytes:
    """This server's key for signing exercises: made once in `home`, kept private, shared by every session."""
    path = home / KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        draft = home / f".{KEY_FILE}.{secrets.token_hex(6)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(32))
        try:
            # Linking is atomic: when two sessions race, both read the one key that won.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes()

"""Setup links: a setup survives the URL round trip, and a damaged link says so."""

import base64
import json
import zlib

import pytest

from cnnlab import share
from cnnlab.errors import SpecError
from cnnlab.model import presets
from cnnlab.specs import AugmentationSettings, DataSettings, TrainingSettings


def test_setup_round_trips_through_a_short_token() -> None:
    setup = share.Setup(
        DataSettings(dataset="shapes", image_size=32, options={"noise": 0.1}),
        presets.get("cifar10").spec,
        TrainingSettings(optimizer="sgd", epochs=3, augmentation=AugmentationSettings(flip="horizontal")),
    )
    token = share.encode(setup)
    assert token.isascii() and "/" not in token and "+" not in token
    assert len(token) < 1000
    assert share.decode(token) == setup


@pytest.mark.parametrize("token", ["not-a-token", "", share.encode.__name__ * 3])
def test_damaged_token_is_a_clear_error(token: str) -> None:
    with pytest.raises(SpecError, match="link"):
        share.decode(token)


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"data": {}, "model": {}}, "incomplete"),
        ([1, 2], "incomplete (got list)"),
        ({"data": {"seed": -1}, "model": {}, "training": {}}, "seed must be a whole number"),
        ({"data": {}, "model": {"input_shape": [8, 8, 1], "layers": []}, "training": {}}, "non-empty list"),
        (
            {"data": {}, "model": presets.get("lenet5").spec.to_dict(), "training": {"epochs": "ten"}},
            "epochs",
        ),
    ],
)
def test_a_readable_link_with_bad_settings_says_what_is_wrong(payload: object, words: str) -> None:
    token = base64.urlsafe_b64encode(zlib.compress(json.dumps(payload).encode())).decode().rstrip("=")
    with pytest.raises(SpecError) as raised:
        share.decode(token)
    assert words in str(raised.value) and "link" in str(raised.value)


def test_a_link_that_unpacks_to_megabytes_is_refused_without_unpacking_it() -> None:
    bomb = base64.urlsafe_b64encode(zlib.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", 9)).decode()
    with pytest.raises(SpecError, match="unpacks to more than"):
        share.decode(bomb)

"""Specs: Keras-speaking JSON that round-trips, and clear errors for malformed input."""

import json

import pytest

from cnnlab import specs
from cnnlab.errors import SpecError

ISSUE_EXAMPLE = {
    "input_shape": [28, 28, 1],
    "layers": [
        {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ],
}


def test_model_spec_round_trips_through_json() -> None:
    spec = specs.ModelSpec.from_dict(ISSUE_EXAMPLE)
    again = specs.ModelSpec.from_json(spec.to_json())
    assert again == spec
    assert again.layers[0].type == "Conv2D"
    assert again.layers[0].params["kernel_size"] == 3
    assert json.loads(spec.to_json())["layers"] == ISSUE_EXAMPLE["layers"]


def test_pairs_are_kept_as_pairs() -> None:
    layer = specs.LayerSpec.from_dict(
        {"type": "Conv2D", "filters": 8, "kernel_size": [3, 5], "strides": [1, 2]}
    )
    assert layer.params["kernel_size"] == (3, 5)
    assert layer.to_dict()["strides"] == [1, 2]


def test_layers_compare_and_hash_by_value() -> None:
    first = specs.LayerSpec("Dense", {"units": 4})
    assert first == specs.LayerSpec("Dense", {"units": 4})
    assert len({first, specs.LayerSpec("Dense", {"units": 4})}) == 1
    assert first.with_params(units=8).params["units"] == 8
    assert first.params["units"] == 4


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"input_shape": [28, 28], "layers": [{"type": "Flatten"}]}, "three positive integers"),
        ({"input_shape": [28, 28, 1], "layers": []}, "non-empty list"),
        ({"input_shape": [28, 28, 1], "layers": [{"filters": 3}]}, 'has no "type"'),
        ({"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}], "optimiser": "adam"}, "Unknown key"),
    ],
)
def test_malformed_model_specs_say_what_is_wrong(data: dict, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        specs.ModelSpec.from_dict(data)


def test_invalid_json_names_the_position() -> None:
    with pytest.raises(SpecError, match="line 1, column"):
        specs.ModelSpec.from_json("{not json")


def test_settings_round_trip_and_reject_unknown_keys() -> None:
    settings = specs.TrainingSettings(
        optimizer="sgd",
        nesterov=True,
        schedule="cosine",
        augmentation=specs.AugmentationSettings(flip="horizontal"),
    )
    assert specs.TrainingSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    data = specs.DataSettings(dataset="shapes", image_size=32, options={"noise": 0.1})
    assert specs.DataSettings.from_dict(json.loads(json.dumps(data.to_dict()))) == data
    with pytest.raises(SpecError, match="lr"):
        specs.TrainingSettings.from_dict({"lr": 0.1})
    with pytest.raises(SpecError, match="optimizer must be one of"):
        specs.TrainingSettings.from_dict({"optimizer": "adagrad"})

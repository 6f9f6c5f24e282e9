"""Specs: Keras-speaking JSON that round-trips, and clear errors for malformed input."""

import dataclasses
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (
            lambda: specs.TrainingSettings(learning_rate="fast"),
            "learning_rate must be a number in [1e-07, 10]; got 'fast'. Use e.g. 0.001.",
        ),
        (
            lambda: specs.TrainingSettings(epochs=0),
            "epochs must be a whole number in [1, 500]; got 0. Use e.g. 10.",
        ),
        (lambda: specs.TrainingSettings(epochs=2.5), "epochs must be a whole number in [1, 500]; got 2.5"),
        (lambda: specs.TrainingSettings(l2=math.nan), "l2 must be a number in [0, 1]; got nan"),
        (lambda: specs.TrainingSettings(nesterov="yes"), "nesterov must be true or false; got 'yes'"),
        (lambda: specs.TrainingSettings(augmentation=3), "augmentation must be a JSON object"),
        (
            lambda: specs.TrainingSettings(plateau_factor=1.0),
            "plateau_factor must be a number in [0.05, 0.95]",
        ),
        (lambda: specs.AugmentationSettings(flip="sideways"), "flip must be one of none, horizontal"),
        (lambda: specs.AugmentationSettings(rotation=1.0), "rotation must be a number in [0, 0.5]; got 1.0"),
        (
            lambda: specs.DataSettings(color_mode="cmyk"),
            "color_mode must be one of null, grayscale, rgb; got 'cmyk'",
        ),
        (
            lambda: specs.DataSettings(image_size=0),
            "image_size must be a whole number at least 1 or null; got 0",
        ),
        (
            lambda: specs.DataSettings(validation_fraction=0.5, test_fraction=0.45),
            "at least 10% for training",
        ),
        (lambda: specs.DataSettings(dataset=""), "dataset must be the name of a dataset"),
        (lambda: specs.DataSettings(options=[1]), "The dataset options must be a JSON object"),
        (lambda: specs.LayerSpec(3), 'A layer\'s "type" must be the name of its Keras class'),
        (lambda: specs.LayerSpec("Dense", [("units", 3)]), "The parameters of Dense must be a JSON object"),
        (lambda: specs.ModelSpec((8, 8), ()), "three positive integers"),
        (lambda: specs.ModelSpec((8, 8, 1), ({"type": "Flatten"},)), "must be a list of layers"),
        (lambda: specs.ModelSpec.from_json(None), "must be JSON text"),
    ],
)
def test_bad_values_say_what_was_wrong_and_what_to_use(make: Any, words: str) -> None:
    with pytest.raises(SpecError) as raised:
        make()
    assert words in str(raised.value)


def test_settings_from_dict_name_the_settings() -> None:
    with pytest.raises(SpecError, match="Invalid data settings: seed must be a whole number"):
        specs.DataSettings.from_dict({"seed": -1})


def test_numpy_numbers_are_stored_as_python_numbers() -> None:
    numpy = pytest.importorskip("numpy")
    settings = specs.TrainingSettings(epochs=numpy.int64(3), learning_rate=numpy.float32(0.5))
    assert type(settings.epochs) is int and type(settings.learning_rate) is float
    json.dumps(settings.to_dict())
    assert specs.ModelSpec(tuple(numpy.array([8, 8, 1])), ()).input_shape == (8, 8, 1)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 300)
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def settings_dicts(cls: type) -> st.SearchStrategy[dict]:
    """Dicts whose keys are mostly the dataclass's fields (sometimes a stranger) and values JSON-ish."""
    names = [item.name for item in dataclasses.fields(cls)]
    keys = st.sampled_from(names) | st.text(max_size=6)
    plausible = st.sampled_from(
        [0, 1, 3, 0.1, 0.5, 2.0, "none", "horizontal", "rgb", "adam", "sgd", "step", "val_loss", True, None]
    )
    return st.dictionaries(keys, plausible | JSON_VALUES, max_size=6)


def read_or_refuse(read: Any, data: Any) -> Any:
    """`read(data)`, or None when it raised SpecError; any other exception fails the test."""
    try:
        return read(data)
    except SpecError as error:
        assert str(error)
        return None


@pytest.mark.parametrize("cls", [specs.TrainingSettings, specs.DataSettings, specs.AugmentationSettings])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_json_settings_are_read_or_refused_with_spec_error(cls: type, data: st.DataObject) -> None:
    values = data.draw(settings_dicts(cls))
    read = read_or_refuse(cls.from_dict, values)
    if read is not None:
        assert cls.from_dict(json.loads(json.dumps(read.to_dict()))) == read
    known = {
        key: value for key, value in values.items() if key in {item.name for item in dataclasses.fields(cls)}
    }
    read_or_refuse(lambda given: cls(**given), known)


LAYER_DICTS = st.dictionaries(
    st.sampled_from(["type", "filters", "kernel_size", "units", "name"]) | st.text(max_size=5),
    st.sampled_from(["Conv2D", "Dense", "Flatten", 3, [3, 3]]) | JSON_VALUES,
    max_size=4,
)
MODEL_DICTS = st.dictionaries(
    st.sampled_from(["name", "input_shape", "layers"]) | st.text(max_size=5),
    st.sampled_from([[8, 8, 1], [28, 28, 3], "cnn"]) | st.lists(LAYER_DICTS, max_size=3) | JSON_VALUES,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(MODEL_DICTS)
def test_any_json_model_is_read_or_refused_with_spec_error(data: dict) -> None:
    spec = read_or_refuse(specs.ModelSpec.from_dict, data)
    if spec is not None:
        assert specs.ModelSpec.from_json(spec.to_json()) == spec
        assert hash(spec.layers) == hash(specs.ModelSpec.from_dict(data).layers)
    read_or_refuse(specs.ModelSpec.from_json, json.dumps(data))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40) | JSON_VALUES.map(json.dumps))
def test_any_text_is_read_or_refused_with_spec_error(text: str) -> None:
    read_or_refuse(specs.ModelSpec.from_json, text)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES, LAYER_DICTS)
def test_any_layer_is_read_or_refused_with_spec_error(params: Any, data: dict) -> None:
    read_or_refuse(lambda given: specs.LayerSpec("Conv2D", given), params)
    read_or_refuse(specs.LayerSpec.from_dict, data)


def test_augmentation_in_words_says_what_each_transformation_does() -> None:
    digits = specs.AugmentationSettings(rotation=0.04, translation=0.1, zoom=0.1)
    assert (
        digits.in_words()
        == "random turns up to 14.4° either way, shifts up to 10% of the image and zooms up to 10%"
    )
    flipped = specs.AugmentationSettings(flip="horizontal", contrast=0.2)
    assert flipped.in_words() == "random left-right flips and contrast changes up to 20%"
    assert specs.AugmentationSettings().in_words() == "none"

"""The oracle: pure-Python shapes and parameter counts equal what Keras builds, exactly; and the
augmentation preview shows what the training-time layers do."""

import re
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnnlab.errors import ArchitectureError
from cnnlab.model import build, presets, shapes
from cnnlab.specs import AugmentationSettings, LayerSpec, ModelSpec, TrainingSettings

# Builds Keras models for seconds: the file runs among the first (tests/conftest.py orders them).
pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parent.parent / "README.md"


def without_downloads(spec: ModelSpec) -> ModelSpec:
    """The same architecture with random backbone weights (ImageNet weights download at run time)."""
    return spec.replace_layers(
        [
            LayerSpec(layer.type, {**layer.params, "weights": None}) if layer.type == "VGG16" else layer
            for layer in spec.layers
        ]
    )


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def assert_matches_keras(spec: ModelSpec) -> keras.Model:
    analysis = shapes.check(spec)
    model = build.build_model(spec)
    assert [tuple(layer.output.shape[1:]) for layer in model.layers] == [
        row.output_shape for row in analysis.rows
    ]
    assert [layer.name for layer in model.layers] == [row.name for row in analysis.rows]
    assert model.count_params() == analysis.total_parameters
    assert trainable_count(model) == analysis.trainable_parameters
    return model


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_every_preset_matches_keras(name: str) -> None:
    assert_matches_keras(without_downloads(presets.get(name).spec))


def documented_counts() -> list[tuple[str, int]]:
    """Every parameter count the preset descriptions and the README state, with its preset."""
    counts = [
        (preset.name, int(match.replace(",", "")))
        for preset in presets.PRESETS.values()
        for match in re.findall(r"\(([\d,]+) parameters\)", preset.description)
    ]
    for name, total in re.findall(
        r"summary (\w+) .*Total params: ([\d,]+)", README.read_text(encoding="utf-8")
    ):
        counts.append((name, int(total.replace(",", ""))))
    return counts


def test_the_documented_parameter_counts_are_keras_counts() -> None:
    counts = documented_counts()
    assert {name for name, _ in counts} >= {"mnist_minimal", "cifar10"}
    for name, stated in counts:
        spec = presets.get(name).spec
        assert stated == build.build_model(spec).count_params() == shapes.analyse(spec).total_parameters, name


@pytest.mark.parametrize("backbone", ["MobileNetV2", "EfficientNetB0", "ResNet50", "VGG16"])
@pytest.mark.parametrize(
    ("size", "trainable", "pooling", "fine_tune_layers"),
    [(75, False, None, 0), (96, True, "avg", 0), (64, False, "max", 7)],
)
def test_backbones_match_keras(
    backbone: str, size: int, trainable: bool, pooling: str | None, fine_tune_layers: int
) -> None:
    layer = {"type": backbone, "weights": None, "trainable": trainable, "pooling": pooling}
    if fine_tune_layers:
        layer["fine_tune_layers"] = fine_tune_layers
    head = (
        [{"type": "Dense", "units": 3, "activation": "softmax"}]
        if pooling
        else [{"type": "GlobalAveragePooling2D"}, {"type": "Dense", "units": 3, "activation": "softmax"}]
    )
    assert_matches_keras(ModelSpec.from_dict({"input_shape": [size, size, 3], "layers": [layer, *head]}))


def _size(draw: st.DrawFn, largest: int) -> int | list[int]:
    if draw(st.booleans()):
        return draw(st.integers(1, largest))
    return [draw(st.integers(1, largest)), draw(st.integers(1, largest))]


GENERATED_KINDS = [
    "Conv2D",
    "SeparableConv2D",
    "DepthwiseConv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "BatchNormalization",
    "Dropout",
    "SpatialDropout2D",
    "Activation",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomShear",
]


@st.composite
def valid_specs(draw: st.DrawFn) -> ModelSpec:
    """Random small CNNs over every non-backbone layer type, kept only when valid."""
    height, width = draw(st.integers(6, 40)), draw(st.integers(6, 40))
    layers: list[dict] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(GENERATED_KINDS))
        padding = draw(st.sampled_from(["valid", "same"]))
        if kind in ("Conv2D", "SeparableConv2D"):
            layer = {
                "filters": draw(st.integers(1, 12)),
                "kernel_size": _size(draw, 5),
                "strides": _size(draw, 3),
                "padding": padding,
                "use_bias": draw(st.booleans()),
            }
            if kind == "SeparableConv2D":
                layer["depth_multiplier"] = draw(st.integers(1, 3))
        elif kind == "DepthwiseConv2D":
            layer = {
                "kernel_size": _size(draw, 5),
                "depth_multiplier": draw(st.integers(1, 3)),
                "padding": padding,
            }
        elif kind.endswith("Pooling2D"):
            layer = {"pool_size": _size(draw, 3), "padding": padding}
            if draw(st.booleans()):
                layer["strides"] = _size(draw, 3)
        elif kind in ("Dropout", "SpatialDropout2D"):
            layer = {"rate": draw(st.floats(0.0, 0.9))}
        elif kind == "Activation":
            layer = {
                "activation": draw(st.sampled_from(["relu", "elu", "gelu", "swish", "tanh", "leaky_relu"]))
            }
        elif kind in ("RandomRotation", "RandomContrast"):
            layer = {"factor": 0.1}
        elif kind in ("RandomZoom", "RandomTranslation"):
            layer = {"height_factor": 0.1, "width_factor": 0.2}
        elif kind == "RandomShear":
            layer = {"x_factor": 0.1, "y_factor": 0.2}
        else:
            layer = {}
        layers.append({"type": kind, **layer})
    layers.append(
        draw(
            st.sampled_from(
                [{"type": "Flatten"}, {"type": "GlobalAveragePooling2D"}, {"type": "GlobalMaxPooling2D"}]
            )
        )
    )
    if draw(st.booleans()):
        layers.append({"type": "BatchNormalization"})
    layers.append(
        {
            "type": "Dense",
            "units": draw(st.integers(1, 16)),
            "activation": "softmax",
            "kernel_regularizer": {"l2": 0.001} if draw(st.booleans()) else None,
        }
    )
    spec = ModelSpec.from_dict(
        {"input_shape": [height, width, draw(st.sampled_from([1, 3]))], "layers": layers}
    )
    assume(shapes.analyse(spec).ok)
    return spec


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(valid_specs())
def test_generated_specs_match_keras(spec: ModelSpec) -> None:
    assert_matches_keras(spec)


def test_training_settings_add_augmentation_and_l2() -> None:
    spec = presets.get("digits_default").spec
    settings = TrainingSettings(l2=0.01, augmentation={"flip": "horizontal", "rotation": 0.1})
    model = build.build_model(spec, settings)
    assert [layer.__class__.__name__ for layer in model.layers[:2]] == ["RandomFlip", "RandomRotation"]
    conv = model.get_layer("conv2d_1")
    assert isinstance(conv.kernel_regularizer, keras.regularizers.L1L2)
    assert conv.kernel_regularizer.l2 == pytest.approx(0.01)
    assert model.count_params() == shapes.analyse(spec).total_parameters


def test_augmentation_is_inactive_when_predicting() -> None:
    spec = ModelSpec.from_dict(
        {
            "input_shape": [8, 8, 1],
            "layers": [
                {"type": "RandomFlip", "mode": "horizontal_and_vertical"},
                {"type": "RandomRotation", "factor": 0.4},
                {"type": "Flatten"},
            ],
        }
    )
    model = build.build_model(spec)
    images = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(images, verbose=0), images.reshape(4, 64))
    assert not np.allclose(model(images, training=True).numpy(), images.reshape(4, 64))


def test_invalid_spec_does_not_build() -> None:
    spec = ModelSpec.from_dict({"input_shape": [8, 8, 1], "layers": [{"type": "Dense", "units": 3}]})
    with pytest.raises(ArchitectureError, match="Add Flatten"):
        build.build_model(spec)


def test_missing_imagenet_weights_say_where_to_put_them(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = ModelSpec.from_dict(
        {"input_shape": [32, 32, 3], "layers": [{"type": "VGG16"}, {"type": "Flatten"}]}
    )
    monkeypatch.setattr("keras.src.applications.vgg16.file_utils.get_file", _refuse_download)
    with pytest.raises(
        build.WeightsUnavailable, match=r"vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5"
    ) as raised:
        build.build_model(spec)
    assert "weights to none" in str(raised.value)


def _refuse_download(fname: str, origin: str, **_: object) -> str:
    raise OSError(f"URL fetch failure on {origin}: offline")


def test_augmented_examples_without_augmentation_are_the_images() -> None:
    images = np.random.default_rng(0).random((3, 8, 8, 1)).astype("float32")
    examples = build.augmented_examples(images, AugmentationSettings(), copies=2)
    assert examples.shape == (3, 2, 8, 8, 1)
    np.testing.assert_array_equal(examples[:, 0], images)
    np.testing.assert_array_equal(examples[:, 1], images)


def test_augmented_examples_follow_the_seed() -> None:
    images = np.random.default_rng(1).random((2, 12, 10, 3)).astype("float32")
    augmentation = AugmentationSettings(flip="horizontal_and_vertical", rotation=0.2, zoom=0.2, contrast=0.5)
    first = build.augmented_examples(images, augmentation, copies=3, seed=4)
    assert first.shape == (2, 3, 12, 10, 3)
    np.testing.assert_array_equal(first, build.augmented_examples(images, augmentation, copies=3, seed=4))
    assert not np.allclose(first, build.augmented_examples(images, augmentation, copies=3, seed=5))
    assert not np.allclose(first[:, 0], first[:, 1])  # The copies of one image differ.
    assert first.min() >= 0.0 and first.max() <= 1.0


def test_augmented_examples_are_clipped_to_the_unit_range() -> None:
    """A flip only moves pixels, so whatever leaves [0, 1] was clipped by the preview."""
    images = np.stack([np.full((4, 4, 1), 2.0), np.full((4, 4, 1), -1.0)]).astype("float32")
    examples = build.augmented_examples(images, AugmentationSettings(flip="horizontal"), copies=2)
    np.testing.assert_array_equal(examples[0], np.ones((2, 4, 4, 1)))
    np.testing.assert_array_equal(examples[1], np.zeros((2, 4, 4, 1)))


def test_augmented_examples_are_what_the_training_layers_do() -> None:
    """The preview applies the same layers the trained model starts with, with the same seed."""
    images = np.random.default_rng(2).random((2, 9, 9, 1)).astype("float32")
    augmentation = AugmentationSettings(rotation=0.1, translation=0.2)
    examples = build.augmented_examples(images, augmentation, copies=1, seed=3)
    keras.utils.set_random_seed(3)
    spec = ModelSpec((9, 9, 1), (LayerSpec("Flatten"),))
    model = build.build_model(spec, TrainingSettings(augmentation=augmentation))
    augmenting = keras.Sequential(model.layers[:2])
    expected = np.clip(np.asarray(augmenting(images, training=True)), 0.0, 1.0)
    np.testing.assert_allclose(examples[:, 0], expected, atol=1e-6)


def _fail_like_keras_offline(fname: str, origin: str, **_: object) -> str:
    # What `keras.utils.get_file` raises when the name cannot be resolved.
    raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")


def test_an_offline_download_names_the_file_without_errno_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = ModelSpec.from_dict(
        {"input_shape": [32, 32, 3], "layers": [{"type": "VGG16"}, {"type": "Flatten"}]}
    )
    monkeypatch.setattr("keras.src.applications.vgg16.file_utils.get_file", _fail_like_keras_offline)
    with pytest.raises(build.WeightsUnavailable) as raised:
        build.build_model(spec)
    message = str(raised.value)
    assert "the download from https://storage.googleapis.com/" in message and "Errno" not in message
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message


def test_a_backbone_bug_is_not_called_missing_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ModelSpec.from_dict(
        {"input_shape": [32, 32, 3], "layers": [{"type": "VGG16"}, {"type": "Flatten"}]}
    )

    def broken(*_: object, **__: object) -> None:
        raise KeyError("block1_conv1")

    monkeypatch.setattr(keras.applications, "VGG16", broken)
    with pytest.raises(KeyError, match="block1_conv1"):
        build.build_model(spec)


def test_arguments_keras_refuses_keep_keras_message(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ModelSpec.from_dict(
        {"input_shape": [32, 32, 3], "layers": [{"type": "VGG16"}, {"type": "Flatten"}]}
    )

    def refusing(*_: object, **__: object) -> None:
        raise ValueError("Input size must be at least 32x32; Received: input_shape=(16, 16, 3)")

    monkeypatch.setattr(keras.applications, "VGG16", refusing)
    with pytest.raises(
        ArchitectureError, match=r"Keras cannot build VGG16\(.*\): Input size must be at least 32x32"
    ):
        build.build_model(spec)

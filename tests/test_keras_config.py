"""What settings become in Keras: schedules, optimizers, callbacks, augmentation and L2."""

import math

import pytest

from cnnlab.model import keras_config, presets
from cnnlab.specs import AugmentationSettings, TrainingSettings


@pytest.mark.parametrize(
    ("settings", "epoch", "expected"),
    [
        (TrainingSettings(learning_rate=0.1), 7, 0.1),
        (
            TrainingSettings(
                learning_rate=0.1, schedule="step", schedule_step_epochs=3, schedule_decay_rate=0.5
            ),
            7,
            0.025,
        ),
        (TrainingSettings(learning_rate=0.1, schedule="exponential", schedule_decay_rate=0.9), 2, 0.081),
        (
            TrainingSettings(learning_rate=0.1, schedule="cosine", epochs=10, minimum_learning_rate=0.0),
            5,
            0.05,
        ),
        (TrainingSettings(learning_rate=0.1, schedule="plateau"), 9, 0.1),
    ],
)
def test_learning_rate_at_and_its_exported_expression_agree(
    settings: TrainingSettings, epoch: int, expected: float
) -> None:
    assert keras_config.learning_rate_at(settings, epoch) == pytest.approx(expected)
    expression = keras_config.learning_rate_expression(settings)
    if expression is not None:
        assert eval(expression, {"math": math, "epoch": epoch}) == pytest.approx(expected)


def test_optimizer_calls_carry_their_own_arguments() -> None:
    sgd = keras_config.optimizer_call(TrainingSettings(optimizer="sgd", momentum=0.8, nesterov=True))
    assert (sgd.class_name, sgd.arguments["momentum"], sgd.arguments["nesterov"]) == ("SGD", 0.8, True)
    adamw = keras_config.optimizer_call(TrainingSettings(optimizer="adamw", weight_decay=0.01))
    assert adamw.class_name == "AdamW" and adamw.arguments["weight_decay"] == 0.01
    assert "momentum" not in keras_config.optimizer_call(TrainingSettings()).arguments


def test_augmentation_layers_follow_the_settings() -> None:
    settings = AugmentationSettings(
        flip="vertical", rotation=0.1, zoom=0.2, translation=0.1, contrast=0.3, shear=0.2
    )
    layers = keras_config.augmentation_layers(settings)
    assert [layer.type for layer in layers] == [
        "RandomFlip",
        "RandomRotation",
        "RandomZoom",
        "RandomTranslation",
        "RandomShear",
        "RandomContrast",
    ]
    assert layers[4].params == {"x_factor": 0.2, "y_factor": 0.2}
    assert keras_config.augmentation_layers(AugmentationSettings()) == []


def test_training_spec_adds_l2_only_where_no_regulariser_is_set() -> None:
    spec = presets.get("digits_default").spec
    own = spec.layers[0].with_params(kernel_regularizer={"l1": 0.5})
    spec = spec.replace_layers([own, *spec.layers[1:]])
    trained = keras_config.training_spec(spec, TrainingSettings(l2=0.01))
    assert trained.layers[0].params["kernel_regularizer"] == {"l1": 0.5}
    assert trained.layers[1].params["kernel_regularizer"] == {"l2": 0.01}
    assert "kernel_regularizer" not in trained.layers[2].params  # pooling has no kernel
    assert keras_config.training_spec(spec, None) is spec

"""Presets: every seed model is there, described, valid, adaptable to a dataset, and trainable in
Keras with the settings its article used."""

import math

import numpy as np
import pytest

from cnnlab.model import presets, shapes
from cnnlab.specs import LayerSpec, ModelSpec, TrainingSettings

SEED_MODELS = [
    "mnist_minimal",
    "mnist_dropout",
    "batchnorm_64",
    "cifar10",
    "mnist_simple",
    "mnist_three_conv",
    "batchnorm_dropout_150",
    "vgg16_transfer",
    "lenet5",
    "digits_default",
]


@pytest.mark.parametrize("name", SEED_MODELS)
def test_seed_models_exist_and_are_valid(name: str) -> None:
    preset = presets.get(name)
    assert preset.title and preset.description and preset.source
    assert shapes.analyse(preset.spec).ok


def test_a_preset_names_its_source_article_by_title() -> None:
    sources = {name: presets.get(name).source for name in SEED_MODELS}
    assert not [source for source in sources.values() if "seed article" in source]
    assert sources["mnist_minimal"] == (
        "the articles “How can this CNN be implemented practically?” and "
        "“How do I set up a Convolutional Neural Network for image classification?”"
    )
    assert sources["digits_default"] == "CNN Lab"


def test_input_shapes_follow_the_articles() -> None:
    assert presets.get("batchnorm_64").input_shape == (64, 64, 3)
    assert presets.get("batchnorm_dropout_150").input_shape == (150, 150, 3)
    assert presets.get("digits_default").input_shape == (8, 8, 1)
    assert presets.get("vgg16_transfer").spec.layers[0].type == "VGG16"


def test_adapt_fits_a_preset_to_a_dataset() -> None:
    adapted = presets.adapt(presets.get("mnist_minimal").spec, (28, 28, 1), 3)
    assert shapes.analyse(adapted, num_classes=3, dataset_input_shape=(28, 28, 1)).ok
    binary = presets.adapt(presets.get("batchnorm_dropout_150").spec, (150, 150, 3), 2)
    assert binary.layers[-1].params == {"units": 1, "activation": "sigmoid"}


def test_new_layer_uses_the_catalogue_start_values() -> None:
    assert presets.new_layer("Conv2D").params == {"filters": 32, "kernel_size": 3, "activation": "relu"}
    assert presets.new_layer("Dropout").params == {"rate": 0.5}


def without_downloads(spec: ModelSpec) -> ModelSpec:
    """The same architecture with random backbone weights (ImageNet weights download at run time)."""
    return spec.replace_layers(
        [
            LayerSpec(layer.type, {**layer.params, "weights": None}) if layer.type == "VGG16" else layer
            for layer in spec.layers
        ]
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_article_training_settings_compile_and_train_in_keras(name: str) -> None:
    """The article's settings reach Keras: its optimizer and learning rate, the loss the output layer
    asks for, and one training step on a batch of the preset's own input shape gives a finite loss."""
    import keras

    from cnnlab.runs.worker import training

    preset = presets.get(name)
    settings = TrainingSettings.from_dict(dict(preset.training))
    model = training.new_model(without_downloads(preset.spec), settings)
    optimizer = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}[settings.optimizer]
    assert type(model.optimizer) is getattr(keras.optimizers, optimizer)
    assert float(model.optimizer.learning_rate) == pytest.approx(settings.learning_rate)
    assert model.loss == shapes.loss_for(preset.spec)
    classes = shapes.analyse(preset.spec).output_shape[0]
    images = np.random.default_rng(0).random((2, *preset.input_shape)).astype("float32")
    labels = np.array([0, 1 % max(classes, 2)])
    model.run_eagerly = True  # One step: tracing a graph would cost more than the step.
    loss = model.train_on_batch(images, labels)
    assert math.isfinite(float(np.ravel(loss)[0]))


def test_the_fine_tuning_preset_keeps_the_articles_optimizer() -> None:
    settings = TrainingSettings(**presets.get("vgg16_finetune_binary").training)
    assert (settings.optimizer, settings.learning_rate) == ("rmsprop", 2e-5)


def test_a_presets_training_settings_are_the_defaults_with_its_own_and_are_said_in_plain_words() -> None:
    three_conv = presets.get("mnist_three_conv")
    assert presets.training_settings(three_conv) == TrainingSettings(epochs=5, batch_size=64)
    default = presets.get(presets.DEFAULT_PRESET)
    assert presets.training_settings(default).batch_size == TrainingSettings().batch_size
    assert presets.carried_settings(three_conv, TrainingSettings(batch_size=64)) == ["batch size 64"]
    assert presets.carried_settings(default, presets.training_settings(default)) == [
        "40 epochs",
        "random turns, shifts and zooms of the training images",
    ]
    fine_tuning = presets.get("vgg16_finetune_binary")
    assert presets.carried_settings(fine_tuning, presets.training_settings(fine_tuning)) == [
        "the RMSprop optimizer",
        "learning rate 2e-05",
        "5 epochs",
    ]

"""Code export: the generated script builds, compiles and fits exactly what the app trains.

The oracle is the app itself: the script's `main()` runs on tiny data, and the model it fits, its
compiled optimizer and loss, the fit arguments and the callbacks are compared with what
`cnnlab.runs.worker.training` builds for the same settings.
"""

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from cnnlab.model import build, codegen, presets
from cnnlab.runs.worker import training
from cnnlab.specs import AugmentationSettings, DataSettings, LayerSpec, ModelSpec, TrainingSettings

VARIED_SETTINGS = [
    TrainingSettings(epochs=2),
    TrainingSettings(
        optimizer="sgd",
        momentum=0.8,
        nesterov=True,
        schedule="step",
        schedule_step_epochs=1,
        l2=0.001,
        epochs=2,
    ),
    TrainingSettings(
        optimizer="adamw",
        schedule="cosine",
        early_stopping=True,
        early_stopping_monitor="val_accuracy",
        epochs=3,
        batch_size=4,
        augmentation=AugmentationSettings(
            flip="horizontal", rotation=0.1, zoom=0.1, translation=0.1, contrast=0.2, shear=0.1
        ),
    ),
    TrainingSettings(
        optimizer="rmsprop", schedule="plateau", learning_rate=2e-5, plateau_patience=1, epochs=2
    ),
    TrainingSettings(schedule="exponential", schedule_decay_rate=0.9, seed=7, epochs=2),
]


def load_script(source: str) -> types.ModuleType:
    module = types.ModuleType("generated")
    exec(compile(source, "generated.py", "exec"), module.__dict__)
    return module


def without_downloads(spec: ModelSpec) -> ModelSpec:
    return spec.replace_layers(
        [
            LayerSpec(layer.type, {**layer.params, "weights": None}) if layer.type == "VGG16" else layer
            for layer in spec.layers
        ]
    )


def configs(model: keras.Model) -> str:
    """Every layer's Keras config, with the automatic names of nested input layers blanked out."""
    text = json.dumps([layer.get_config() for layer in model.layers], sort_keys=True, default=str)
    return re.sub(r"(input_layer|global_average_pooling2d|global_max_pooling2d)_\d+", r"\1", text)


def callback_facts(callback: keras.callbacks.Callback, epochs: int) -> tuple[str, dict[str, Any]]:
    """A callback's class and its settings: plain attributes, and a schedule's rate at every epoch."""
    facts = {
        key: value
        for key, value in vars(callback).items()
        if isinstance(value, bool | int | float | str) and not key.startswith("_")
    }
    if isinstance(callback, keras.callbacks.LearningRateScheduler):
        facts["rates"] = [float(callback.schedule(epoch, 1.0)) for epoch in range(epochs)]
    return type(callback).__name__, facts


def optimizer_facts(optimizer: keras.optimizers.Optimizer) -> tuple[str, dict[str, Any]]:
    config = {key: value for key, value in optimizer.get_config().items() if key != "name"}
    return type(optimizer).__name__, config


class FitRecorder:
    """Stands in for `keras.Model.fit`: records what the script fits, as it is before fitting."""

    def __init__(self, real_fit: Any) -> None:
        self.real_fit = real_fit
        self.calls: list[dict[str, Any]] = []

    def __call__(self, model: keras.Model, *arguments: Any, **options: Any) -> Any:
        epochs = int(options["epochs"])
        self.calls.append(
            {
                "model": configs(model),
                "parameters": model.count_params(),
                "optimizer": optimizer_facts(model.optimizer),
                "loss": model.loss,
                "batch_size": options["batch_size"],
                "epochs": epochs,
                "callbacks": [callback_facts(callback, epochs) for callback in options["callbacks"]],
            }
        )
        return self.real_fit(model, *arguments, **options)


def tiny_data(input_shape: tuple[int, ...], classes: int) -> Any:
    """What `load_data` returns, with a dozen random images per split."""
    generator = np.random.default_rng(0)

    def split() -> tuple[np.ndarray, np.ndarray, list[int]]:
        images = generator.random((12, *input_shape)).astype("float32")
        return images, np.arange(12) % classes, list(range(12))

    return lambda: (split(), split(), split())


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings", VARIED_SETTINGS, ids=lambda settings: settings.optimizer + "-" + settings.schedule
)
def test_the_script_fits_what_training_fits(
    settings: TrainingSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = presets.get("digits_default").spec
    script = load_script(codegen.script(spec, settings))
    script.load_data = tiny_data(spec.input_shape, 10)
    recorder = FitRecorder(keras.Model.fit)
    monkeypatch.setattr(
        keras.Model, "fit", lambda model, *arguments, **options: recorder(model, *arguments, **options)
    )
    monkeypatch.chdir(tmp_path)
    script.main()
    assert (tmp_path / f"{spec.name}.keras").is_file()
    [fitted] = recorder.calls

    app_model = training.new_model(spec, settings)
    assert fitted["model"] == configs(app_model)
    assert fitted["parameters"] == app_model.count_params()
    assert fitted["optimizer"] == optimizer_facts(training.make_optimizer(settings))
    assert fitted["optimizer"][1]["learning_rate"] == pytest.approx(settings.learning_rate)
    assert fitted["loss"] == app_model.loss
    assert (fitted["batch_size"], fitted["epochs"]) == (settings.batch_size, settings.epochs)
    app_callbacks = [
        callback_facts(callback, settings.epochs) for callback in training.make_callbacks(settings)
    ]
    assert fitted["callbacks"] == app_callbacks
    expected = {"plateau": "ReduceLROnPlateau", "constant": None}.get(
        settings.schedule, "LearningRateScheduler"
    )
    names = [name for name, _ in fitted["callbacks"]]
    assert names == [
        name for name in (expected, "EarlyStopping" if settings.early_stopping else None) if name
    ]


def test_the_schedule_in_the_script_gives_the_apps_rates() -> None:
    settings = TrainingSettings(learning_rate=0.1, schedule="cosine", epochs=6, minimum_learning_rate=0.001)
    script = load_script(codegen.script(presets.get("digits_default").spec, settings))
    [scheduler] = [callback for callback in training.make_callbacks(settings)]
    for epoch in range(settings.epochs):
        rate = script.learning_rate_schedule(epoch, settings.learning_rate)
        assert rate == pytest.approx(scheduler.schedule(epoch, settings.learning_rate))
    assert script.learning_rate_schedule(settings.epochs, 0.1) == pytest.approx(0.001)
    assert not math.isclose(script.learning_rate_schedule(1, 0.1), 0.1)


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_generated_model_equals_the_built_model(name: str) -> None:
    spec = without_downloads(presets.get(name).spec)
    settings = VARIED_SETTINGS[len(name) % len(VARIED_SETTINGS)]
    generated = load_script(codegen.script(spec, settings)).build_model()
    built = build.build_model(spec, settings)
    assert configs(generated) == configs(built)
    assert generated.count_params() == built.count_params()


def test_fine_tuning_exports_the_same_frozen_layers() -> None:
    spec = ModelSpec.from_dict(
        {
            "input_shape": [64, 64, 3],
            "layers": [
                {"type": "MobileNetV2", "weights": None, "fine_tune_layers": 5, "pooling": "avg"},
                {"type": "Dense", "units": 3, "activation": "softmax"},
            ],
        }
    )
    generated, built = load_script(codegen.script(spec)).build_model(), build.build_model(spec)
    assert configs(generated) == configs(built)
    assert [weight.name for weight in generated.trainable_weights] == [
        weight.name for weight in built.trainable_weights
    ]
    assert len(built.trainable_weights) > 2  # The head's kernel and bias, and some backbone layers.


def test_script_is_lint_clean(tmp_path: Path) -> None:
    path = tmp_path / "script.py"
    path.write_text(codegen.script(presets.get("vgg16_transfer").spec, VARIED_SETTINGS[2]))
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_script_runs_and_trains(tmp_path: Path) -> None:
    """The whole script, as a user runs it: it loads the digits itself, trains, tests and saves."""
    source = codegen.script(presets.get("digits_default").spec, TrainingSettings(epochs=1), DataSettings())
    path = tmp_path / "train.py"
    path.write_text(source)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Test accuracy:" in result.stdout
    assert (tmp_path / "digits_default.keras").is_file()


@pytest.mark.parametrize(
    "data",
    [DataSettings(), DataSettings(seed=3, validation_fraction=0.2, test_fraction=0.1, subset=300)],
    ids=["defaults", "subset"],
)
def test_the_script_splits_the_digits_as_the_app_does(data: DataSettings) -> None:
    """The oracle is the app's own loader: the same images, in the same order, in each split."""
    from cnnlab.data import datasets

    script = load_script(codegen.script(presets.get("digits_default").spec, data=data))
    parts = script.load_data(data.validation_fraction, data.test_fraction, data.seed)
    app = datasets.load(data)
    expected = [(app.x_train, app.y_train), (app.x_val, app.y_val), (app.x_test, app.y_test)]
    assert [len(labels) for _, labels, _ in parts] == [len(labels) for _, labels in expected]
    for (images, labels, _), (app_images, app_labels) in zip(parts, expected, strict=True):
        np.testing.assert_array_equal(labels, app_labels)
        np.testing.assert_allclose(images, app_images, atol=1e-6)
    if data.subset is None:
        assert [len(labels) for _, labels, _ in parts] == [1259, 269, 269]


def test_the_script_takes_epochs_on_its_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = codegen.script(
        presets.get("digits_default").spec, TrainingSettings(epochs=7), file_name="mine.py"
    )
    assert "Run it with `python mine.py`" in source
    assert "python digits_default.py" in codegen.script(presets.get("digits_default").spec)
    epochs: list[int] = []

    def fit(model: keras.Model, *arguments: Any, **options: Any) -> None:
        epochs.append(options["epochs"])

    monkeypatch.setattr(keras.Model, "fit", fit)
    monkeypatch.chdir(tmp_path)
    for argv, expected in ((["mine.py"], 7), (["mine.py", "--epochs", "2"], 2)):
        monkeypatch.setattr(sys, "argv", argv)
        exec(compile(source, "mine.py", "exec"), {"__name__": "__main__"})
        assert epochs[-1] == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/b: c", "a_b__c"),
        ("../../etc/passwd", "etc_passwd"),
        ('C:\\temp\\x?*"<>|', "C__temp_x"),
        ("digits_default", "digits_default"),
        ("/:?", "model"),
        ("x" * 60, "x" * 40),
    ],
)
def test_the_model_pages_downloads_have_safe_names(name: str, expected: str) -> None:
    spec = dataclasses.replace(presets.get("digits_default").spec, name=name)
    for extension in (".py", ".json"):
        file_name = codegen.download_name(spec, extension)
        assert file_name == f"{expected}{extension}"
        assert not set(file_name) & set('/\\:?*"<>| ') and not file_name.startswith(".")


def test_a_script_names_a_users_zip_by_its_file_never_the_servers_folder() -> None:
    data = DataSettings(dataset="/srv/cnnlab/uploads/user-3f9a0c1d2e4b5a69/pets-0123.zip")
    script = codegen.script(presets.get("digits_default").spec, data=data)
    assert "pets-0123.zip" in script
    assert "/srv/cnnlab" not in script and "uploads" not in script and "user-3f9a" not in script
    assert codegen.without_folder(DataSettings(dataset="mnist")) == DataSettings(dataset="mnist")

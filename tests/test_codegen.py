"""Code export: the generated script is valid, readable and builds exactly the app's model."""

import ast
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from cnnlab.model import build, codegen, presets
from cnnlab.specs import AugmentationSettings, DataSettings, LayerSpec, ModelSpec, TrainingSettings

VARIED_SETTINGS = [
    TrainingSettings(),
    TrainingSettings(optimizer="sgd", momentum=0.8, nesterov=True, schedule="step", l2=0.001),
    TrainingSettings(optimizer="adamw", schedule="cosine", early_stopping=True,
                     augmentation=AugmentationSettings(flip="horizontal", rotation=0.1, zoom=0.1, translation=0.1,
                                                       contrast=0.2, shear=0.1)),
    TrainingSettings(optimizer="rmsprop", schedule="plateau", learning_rate=2e-5),
]  # fmt: skip


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


def configs(model) -> str:
    """Every layer's Keras config, with the automatic names of nested input layers blanked out."""
    text = json.dumps([layer.get_config() for layer in model.layers], sort_keys=True, default=str)
    return re.sub(r"(input_layer|global_average_pooling2d|global_max_pooling2d)_\d+", r"\1", text)


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_generated_model_equals_the_built_model(name: str) -> None:
    spec = without_downloads(presets.get(name).spec)
    settings = VARIED_SETTINGS[len(name) % len(VARIED_SETTINGS)]
    generated = load_script(codegen.script(spec, settings)).build_model()
    built = build.build_model(spec, settings)
    assert configs(generated) == configs(built)
    assert generated.count_params() == built.count_params()


def test_fine_tuning_exports_the_same_frozen_layers() -> None:
    spec = ModelSpec.from_dict({"input_shape": [64, 64, 3], "layers": [
        {"type": "MobileNetV2", "weights": None, "fine_tune_layers": 5, "pooling": "avg"},
        {"type": "Dense", "units": 3, "activation": "softmax"}]})  # fmt: skip
    source = codegen.script(spec)
    assert "for layer in mobile_net_v2_1.layers[:-5]:" in source
    generated, built = load_script(source).build_model(), build.build_model(spec)
    assert configs(generated) == configs(built)
    assert [weight.name for weight in generated.trainable_weights] == [
        weight.name for weight in built.trainable_weights
    ]


@pytest.mark.parametrize("settings", VARIED_SETTINGS)
def test_training_settings_reach_the_script(settings: TrainingSettings) -> None:
    source = codegen.script(presets.get("digits_default").spec, settings)
    ast.parse(source)
    optimizer = {"adam": "Adam(", "sgd": "SGD(", "adamw": "AdamW(", "rmsprop": "RMSprop("}[settings.optimizer]
    assert f"keras.optimizers.{optimizer}" in source
    assert f"learning_rate={settings.learning_rate!r}" in source
    assert f"batch_size={settings.batch_size}" in source and f"epochs={settings.epochs}" in source
    assert ("EarlyStopping(" in source) == settings.early_stopping
    assert ("ReduceLROnPlateau(" in source) == (settings.schedule == "plateau")
    assert ("LearningRateScheduler(" in source) == (settings.schedule in ("step", "exponential", "cosine"))


def test_script_is_lint_clean(tmp_path: Path) -> None:
    path = tmp_path / "script.py"
    path.write_text(codegen.script(presets.get("vgg16_transfer").spec, VARIED_SETTINGS[2]))
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", str(path)], capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_script_runs_and_trains(tmp_path: Path) -> None:
    source = codegen.script(presets.get("digits_default").spec, TrainingSettings(epochs=1), DataSettings())
    path = tmp_path / "train.py"
    path.write_text(source)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=environment)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Test accuracy:" in result.stdout
    assert (tmp_path / "digits_default.keras").is_file()

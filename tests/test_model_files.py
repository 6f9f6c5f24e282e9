"""Model files a user supplies: only built-in Keras layers load, in safe mode; everything else is refused."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from cnnlab.trained import model_files
from cnnlab.trained.model_files import ModelFileError


def _classifier(*middle: keras.layers.Layer) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            *middle,
            keras.layers.Conv2D(2, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def test_a_plain_model_loads_and_predicts_like_the_original(tmp_path: Path) -> None:
    model = _classifier(keras.layers.Rescaling(0.5))
    path = tmp_path / "plain.keras"
    model.save(path)
    loaded = model_files.load_model_file(path)
    images = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)
    assert model_files.load_model_bytes(path.read_bytes()).count_params() == model.count_params()


def test_a_lambda_layer_is_refused_and_its_code_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    code = keras.layers.Lambda(
        lambda tensor, path=str(marker): (Path(path).write_text("ran"), tensor)[1], name="sneaky"
    )
    model = _classifier(code)
    path = tmp_path / "lambda.keras"
    model.save(path)
    marker.unlink(missing_ok=True)  # Building the model above called the lambda once.
    with pytest.raises(ModelFileError, match=r"a Lambda layer.*\(layer 'sneaky'\).*safe mode.*refuses"):
        model_files.load_model_file(path)
    with pytest.raises(ModelFileError, match="Lambda layer"):
        model_files.load_model_bytes(path.read_bytes())
    assert not marker.exists()


def test_keras_safe_mode_is_the_second_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if the config check missed a lambda, Keras's safe mode refuses it, and the message says why."""
    model = _classifier(keras.layers.Lambda(lambda tensor: tensor * 2.0))
    path = tmp_path / "lambda.keras"
    model.save(path)
    monkeypatch.setattr(model_files, "check_config", lambda config: None)
    with pytest.raises(ModelFileError, match="refused: it would run code from the file"):
        model_files.load_model_file(path)


def _rewrite_config(source: Path, target: Path, change: Callable[[dict[str, Any]], None]) -> None:
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as rewritten:
        for name in archive.namelist():
            data = archive.read(name)
            if name == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            rewritten.writestr(name, data)


def test_a_custom_class_from_outside_keras_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "plain.keras"
    _classifier().save(source)
    target = tmp_path / "custom.keras"

    def make_custom(config: dict) -> None:
        layer = config["config"]["layers"][1]
        layer.update(module="evil.layers", class_name="Backdoor", registered_name="evil>Backdoor")

    _rewrite_config(source, target, make_custom)
    with pytest.raises(ModelFileError, match=r"custom class 'Backdoor' from 'evil\.layers'.*refuses"):
        model_files.load_model_file(target)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"\x89HDF\r\n\x1a\n" + b"\x00" * 100, "HDF5 \\(.h5\\) file, the legacy Keras format"),
        (b"print('hello')\n", "looks like a text file"),
        (b"\x80\x04\x95" + b"\x00" * 20, "Python pickle"),
    ],
)
def test_files_that_are_not_keras_models(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=expected):
        model_files.load_model_file(path)


def test_a_zip_without_a_model_and_a_damaged_config(tmp_path: Path) -> None:
    path = tmp_path / "photos.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cat.jpg", b"not really")
    with pytest.raises(ModelFileError, match=r"no config\.json and no metadata\.json.*cat\.jpg"):
        model_files.load_model_file(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", b"{broken")
        archive.writestr("metadata.json", b"{}")
    with pytest.raises(ModelFileError, match="damaged"):
        model_files.load_model_file(path)


def test_too_large_files_are_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_files, "MAX_MODEL_BYTES", 1000)
    path = tmp_path / "big.keras"
    _classifier().save(path)
    with pytest.raises(ModelFileError, match=r"MB; the limit is 0 MB"):
        model_files.load_model_file(path)
    with pytest.raises(ModelFileError, match="the limit is"):
        model_files.load_model_bytes(b"x" * 2000)


def test_a_model_that_is_not_an_image_classifier(tmp_path: Path) -> None:
    path = tmp_path / "vector.keras"
    keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, activation="softmax")]).save(path)
    with pytest.raises(ModelFileError, match=r"input of shape \(None, 5\); CNN Lab needs one image input"):
        model_files.load_model_file(path)


def test_a_cnn_lab_file_carries_its_training_data_and_calibration_and_still_loads(tmp_path: Path) -> None:
    from cnnlab.data import datasets
    from cnnlab.trained.calibration import Calibration

    model = _classifier()
    path = tmp_path / "plain.keras"
    model.save(path)
    assert model_files.training_data(path.read_bytes()) == (None, None)  # A file from elsewhere.
    info = datasets.info("digits")
    calibration = Calibration(0.7, 1.5, np.zeros(64, np.float32), np.eye(2, 64, dtype=np.float32))
    carried = model_files.with_training_data(path.read_bytes(), info, calibration)
    read_info, read_calibration = model_files.training_data(carried)
    assert read_info is not None and read_calibration is not None
    assert (read_info.name, read_info.digit_like, read_info.class_names) == ("digits", True, info.class_names)
    assert read_info.image_shape == tuple(info.image_shape)
    assert read_calibration.confidence_threshold == pytest.approx(0.7)
    np.testing.assert_array_equal(read_calibration.basis, calibration.basis)
    loaded = model_files.load_model_bytes(carried)  # The extra members do not disturb Keras.
    batch = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0), rtol=1e-5)

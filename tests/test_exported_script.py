"""The exported training script on the user's own images: it runs with Keras alone (no CNN Lab),
reads a folder or .zip of class subfolders as the app reads it, and splits it as the app does.

The oracle is the app's own loader (`cnnlab.data.datasets.load`): the script's images, labels and
file names in each split must equal the app's. One test runs the script as a user would, in a fresh
interpreter that cannot import CNN Lab, for one epoch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from data_files import save, zip_folder
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.data import datasets
from cnnlab.model import codegen, presets
from cnnlab.specs import DataSettings

# Runs the script given on the command line as `__main__` where `import cnnlab` fails.
WITHOUT_CNNLAB = """
import runpy, sys
sys.modules["cnnlab"] = None  # `import cnnlab` now raises ImportError, installed or not.
try:
    import cnnlab
except ImportError:
    pass
else:
    raise SystemExit("cnnlab is importable")
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
loaded = sorted(name for name in sys.modules if name.startswith("cnnlab") and sys.modules[name] is not None)
if loaded:
    raise SystemExit(f"the script imported {loaded}")
"""


def load_script(source: str) -> types.ModuleType:
    """The script as a module, its `__main__` block not run."""
    module = types.ModuleType("exported")
    exec(compile(source, "exported.py", "exec"), module.__dict__)
    return module


def three_classes(root: Path) -> Path:
    """3 classes of 12 small PNGs each (a bright square in a class's own place), and clutter."""
    generator = np.random.default_rng(0)
    for class_index, name in enumerate(("circle", "line", "square")):
        for number in range(12):
            pixels = generator.integers(0, 60, size=(12, 12, 3), dtype=np.uint8)
            pixels[2 + 3 * class_index : 6 + 3 * class_index, 3:9] = 230
            save(root / name / f"{number:02d}.png", Image.fromarray(pixels), "PNG")
    (root / "line" / "notes.txt").write_text("not an image")
    (root / "square" / ".hidden.png").write_bytes(b"hidden")
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return root


def fitted_script(settings: DataSettings) -> types.ModuleType:
    """The script for the digits preset fitted to the data, as a run on it records its model."""
    data = datasets.load(settings)
    spec = presets.adapt(presets.get("digits_default").spec, data.image_shape, data.num_classes)
    return load_script(codegen.script(spec, data=settings))


def assert_same_split(script: types.ModuleType, settings: DataSettings, **arguments: object) -> None:
    """The script's train, validation and test parts hold the app's images, labels and file names."""
    parts = script.load_data(**arguments)
    app = datasets.load(settings)
    expected = [(app.x_train, app.y_train), (app.x_val, app.y_val), (app.x_test, app.y_test)]
    for (images, labels, names), (app_images, app_labels), app_names in zip(
        parts, expected, app.file_names, strict=True
    ):
        np.testing.assert_array_equal(labels, app_labels)
        np.testing.assert_allclose(images, app_images, atol=1e-6)
        if settings.dataset != "shapes":  # The app names only the user's files.
            assert names == list(app_names)


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_the_script_reads_and_splits_own_images_as_the_app_does(
    own_folder: Path, tmp_path: Path, as_zip: bool
) -> None:
    """Mixed formats, modes and sizes, a corrupt file, an oversized one and clutter (`own_folder`);
    zipped inside a wrapper folder too."""
    source = zip_folder(own_folder, tmp_path / "pets.zip") if as_zip else own_folder
    settings = DataSettings(dataset=str(source), image_size=16, seed=4)
    app = datasets.load(settings)
    assert sum(len(names) for names in app.file_names) == 10  # cats 6, dogs 4: the rest skipped.
    # The script names the upload by its name only; the user points it at their copy.
    script = fitted_script(settings)
    assert source.name == script.DATA_PATH
    assert_same_split(script, settings, data_path=str(source))


def test_the_script_draws_the_apps_shapes() -> None:
    settings = DataSettings(
        dataset="shapes", image_size=16, color_mode="rgb", seed=2, options={"count_per_class": 6}
    )
    assert_same_split(fitted_script(settings), settings)


def test_code_sizes_the_head_to_the_datasets_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = three_classes(tmp_path / "mine")
    assert main(["code", "cifar10", "--dataset", str(folder), "--image-size", "32"]) == 0
    script = load_script(capsys.readouterr().out)
    model = script.build_model()
    assert model.output_shape == (None, 3) and model.input_shape == (None, 32, 32, 3)
    assert str(folder) == script.DATA_PATH


@pytest.mark.slow
def test_the_script_trains_on_a_folder_without_cnnlab(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a user runs it: `cnnlab code` for their folder, then the script in a fresh interpreter
    (`python -I`: no PYTHONPATH, no current folder) where `import cnnlab` fails, for one epoch."""
    folder = three_classes(tmp_path / "my images")
    assert main(["code", "digits_default", "--dataset", str(folder), "--image-size", "12"]) == 0
    script = tmp_path / "train.py"
    script.write_text(capsys.readouterr().out)
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            WITHOUT_CNNLAB,
            str(script),
            "--epochs",
            "1",
            "--split-file",
            "split.json",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "Test accuracy:" in result.stdout
        and "Skipped (not a readable image): circle/broken.png" in result.stdout
    )
    written = json.loads((work / "split.json").read_text())
    assert not set(written["train"]) & set(written["test"])
    assert not set(written["train"]) & set(written["validation"])
    app = datasets.load(DataSettings(dataset=str(folder), image_size=12))
    assert [written[part] for part in ("train", "validation", "test")] == [
        list(names) for names in app.file_names
    ]
    assert len(written["train"]) + len(written["validation"]) + len(written["test"]) == 36
    import keras

    model = keras.saving.load_model(work / "digits_default.keras")
    assert model.output_shape == (None, 3)

"""The command line, run as a user runs it: `python -m cnnlab ...` in a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.model import presets, shapes

# Keras's own totals for the seed models, from `model.summary()`.
SEED_TOTALS = {
    "mnist_minimal": 34_826,
    "mnist_dropout": 34_826,
    "cifar10": 122_570,
    "mnist_simple": 542_230,
    "mnist_three_conv": 93_322,
}


def cnnlab(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *arguments], capture_output=True, text=True, timeout=120
    )


def test_presets_lists_every_preset() -> None:
    result = cnnlab("presets")
    assert result.returncode == 0
    for name in presets.PRESETS:
        assert name in result.stdout


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_summary_ends_with_the_total(name: str) -> None:
    result = cnnlab("summary", name)
    assert result.returncode == 0, result.stderr
    total = shapes.analyse(presets.get(name).spec).total_parameters
    assert result.stdout.strip().splitlines()[-1] == f"Total params: {total:,}"
    if name in SEED_TOTALS:
        assert total == SEED_TOTALS[name]


def test_summary_reads_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(presets.get("cifar10").spec.to_json())
    result = cnnlab("summary", str(path))
    assert result.stdout.strip().endswith("Total params: 122,570")
    assert "(None, 4, 4, 64)" in result.stdout


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            {"input_shape": [8, 8, 1], "layers": [{"type": "Conv2D", "filters": 4, "kernel_size": 9}]},
            "would output",
        ),
        ({"input_shape": [8, 8, 1], "layers": [{"type": "Dense", "units": 3}]}, "Add Flatten"),
        ("{broken", "not valid JSON"),
    ],
)
def test_invalid_spec_exits_non_zero_without_traceback(tmp_path: Path, content: object, words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    result = cnnlab("summary", str(path))
    assert result.returncode != 0
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_spec_name() -> None:
    result = cnnlab("code", "no_such_model")
    assert result.returncode == 2 and "neither a preset nor a JSON file" in result.stderr


def test_code_prints_a_script() -> None:
    result = cnnlab("code", "mnist_minimal", "--dataset", "mnist")
    assert result.returncode == 0
    assert "keras.datasets.mnist.load_data()" in result.stdout
    assert "def build_model():" in result.stdout

"""One prediction for new images: top-k, the out-of-distribution hint and its calibration."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnnlab.data import datasets
from cnnlab.store.run_store import Store
from cnnlab.trained import calibration, checkpoints, prediction


def test_calibration_thresholds_come_from_the_held_out_split() -> None:
    labels = np.array([0, 1, 0, 1] * 25)
    confidences = np.linspace(0.55, 1.0, 100)
    probabilities = np.where(np.eye(2)[labels] == 1, confidences[:, None], 1 - confidences[:, None])
    rng = np.random.default_rng(0)
    training = rng.random((200, 4, 4, 1)).astype(np.float32)
    measured = calibration.calibrate(probabilities, labels, training, training[:50])
    # The 2nd percentile of the right answers' confidence, clipped to at most 0.8.
    assert measured.confidence_threshold == pytest.approx(np.percentile(confidences, 2))
    assert (
        measured.basis is not None
        and measured.basis.shape[1] == 16
        and measured.residual_threshold is not None
    )
    held_out = calibration.residuals(measured, training[:50])
    assert held_out is not None and (held_out <= measured.residual_threshold).all()
    far = calibration.residuals(measured, 5 * rng.standard_normal((3, 4, 4, 1)).astype(np.float32))
    assert far is not None and (far > measured.residual_threshold).all()
    restored = calibration.Calibration.from_bytes(measured.to_bytes())
    assert restored.confidence_threshold == measured.confidence_threshold
    np.testing.assert_allclose(restored.basis, measured.basis)  # type: ignore[arg-type]  # checked above
    with pytest.raises(calibration.CalibrationError, match="no held-out images"):
        calibration.calibrate(probabilities[:0], labels[:0], training, training[:0])
    with pytest.raises(calibration.CalibrationError, match="damaged"):
        calibration.Calibration.from_bytes(b"not an npz")


def test_the_sentence_names_what_the_model_knows() -> None:
    digits = datasets.info("digits")
    assert prediction.out_of_distribution_sentence(digits) == (
        "This does not look like a digit; the model only knows 0-9."
    )
    pets = dataclasses.replace(digits, title="My pets", class_names=("cat", "dog"), digit_like=False)
    assert prediction.out_of_distribution_sentence(pets).endswith("it only knows cat, dog.")


def test_the_headline_says_first_what_to_make_of_the_answer() -> None:
    """Unlike the training data: the warning first, then the guess, in the dataset's own words; unsure:
    a 'perhaps'; otherwise the class and its probability."""
    digits = datasets.info("digits")
    pets = dataclasses.replace(digits, title="My pets", class_names=("cat", "dog"), digit_like=False)
    prepared = prediction.prepare([np.zeros((8, 8), np.float32)], digits)[0]

    def answered(info: datasets.DatasetInfo, flagged: bool, unsure: str | None) -> prediction.Prediction:
        return prediction.Prediction(
            name="x",
            class_index=0,
            class_name=info.class_names[0],
            probability=0.99,
            top=(),
            probabilities=np.array([0.99, 0.01]),
            prepared=prepared,
            out_of_distribution=prediction.out_of_distribution_sentence(info) if flagged else None,
            unsure=unsure,
        )

    assert answered(digits, True, None).headline() == (
        "This does not look like a digit; the model's guess would be 0"
    )
    assert answered(pets, True, "unsure").headline() == (
        "This does not look like the training images (My pets); the model's guess would be cat"
    )
    assert answered(pets, False, "unsure").headline() == "The model is unsure: perhaps cat (99%)"
    assert answered(pets, False, None).headline() == "cat (99%)"


def test_decode_keeps_transparency_so_white_ink_is_not_lost() -> None:
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(20, 5), (20, 35)], fill=(255, 255, 255, 255), width=4)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    decoded = prediction.decode(buffer.getvalue())
    assert decoded.mode == "RGBA"
    prepared = prediction.prepare([decoded], datasets.info("digits"))[0]
    assert prepared.ink_box is not None and prepared.array.max() == pytest.approx(1.0)


def test_a_run_predicts_with_top_k_and_flags_what_is_not_a_digit(trained_home: tuple[Path, str]) -> None:
    home, run_id = trained_home
    store = Store(home)
    checkpoint = checkpoints.find(store, run_id, "best")
    model = checkpoints.load(checkpoint)
    data = datasets.load(store.get_run(run_id).data())
    info = dataclasses.replace(data.info, class_names=tuple(data.class_names))
    measured = prediction.for_run(checkpoint, model, data)
    kept = checkpoint.path.with_name(checkpoint.path.name + calibration.SUFFIX)
    assert kept.is_file()  # Measured once per checkpoint version, then read back.
    assert prediction.for_run(checkpoint, model, data).confidence_threshold == measured.confidence_threshold
    noise = (np.random.default_rng(1).random((60, 60)) * 255).astype(np.uint8)
    blank = np.full((30, 30), 255, np.uint8)
    results = prediction.predict(
        model, [data.x_test[0], noise, blank], info, measured, names=["test digit", "noise", "blank"], top_k=4
    )
    digit, static, empty = results
    assert [len(result.top) for result in results] == [4, 4, 4]
    assert digit.top[0] == (digit.class_name, digit.probability)
    assert [value for _, value in digit.top] == sorted((value for _, value in digit.top), reverse=True)
    assert digit.probability == pytest.approx(float(digit.probabilities.max()))
    assert static.out_of_distribution == "This does not look like a digit; the model only knows 0-9."
    assert static.reasons and len(static.details) == len(static.reasons)
    assert static.headline().startswith("This does not look like a digit; the model's guess would be ")
    assert empty.out_of_distribution is not None and "nothing stands out" in empty.reasons[0]
    assert "no ink" in empty.details[0]
    line = static.to_json()
    assert line["out_of_distribution"] is True and line["image"] == "noise" and len(line["top_k"]) == 4


def drawn_digit_png(index: int, size: int = 64) -> bytes:
    """A real handwritten digit as a photo shows it: dark ink on white paper, enlarged."""
    from sklearn.datasets import load_digits

    pixels = 255 - (load_digits().images[index] * (255 / 16)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue()


def test_run_info_describes_the_run_like_its_loaded_data(trained_home: tuple[Path, str]) -> None:
    home, run_id = trained_home
    run = Store(home).get_run(run_id)
    data = datasets.load(run.data())
    described = prediction.run_info(run)
    assert (described.name, described.digit_like, described.image_shape, described.class_names) == (
        data.info.name,
        data.info.digit_like,
        data.image_shape,
        tuple(data.class_names),
    )


def test_a_downloaded_model_file_predicts_exactly_like_its_run(
    trained_home: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's `.keras` download carries what the run was trained on and its calibration; uploaded
    as a model file it prepares, answers and flags every image as the run does, and so does the CLI."""
    import json

    from cnnlab.cli import main as cli
    from cnnlab.trained import exports, model_files

    home, run_id = trained_home
    store = Store(home)
    run = store.get_run(run_id)
    checkpoint = checkpoints.find(store, run_id, "best")
    model = checkpoints.load(checkpoint)
    measured = prediction.for_run(checkpoint, model, datasets.load(run.data()))
    noise = (np.random.default_rng(2).random((48, 48)) * 255).astype(np.uint8)
    images = [prediction.decode(drawn_digit_png(index)) for index in (0, 7)] + [noise]
    names = ["zero", "seven", "noise"]
    through_run = prediction.predict(model, images, prediction.run_info(run), measured, names=names)

    downloaded = exports.model_file(run, checkpoint)  # The calibration kept beside the checkpoint.
    assert downloaded == exports.model_bytes(store, run)  # The Runs page hands out the same file.
    info, carried = model_files.training_data(downloaded)
    assert info is not None and carried is not None, "the download does not say what it was trained on"
    assert (info.name, info.image_shape, info.digit_like) == ("digits", (8, 8, 1), True)
    through_file = prediction.predict(
        model_files.load_model_bytes(downloaded), images, info, carried, names=names
    )
    for by_run, by_file in zip(through_run, through_file, strict=True):
        np.testing.assert_array_equal(by_run.prepared.array, by_file.prepared.array)
        np.testing.assert_allclose(by_run.probabilities, by_file.probabilities, rtol=1e-6, atol=1e-7)
        assert by_run.to_json() == by_file.to_json()
    assert through_run[2].out_of_distribution is not None  # The noise is flagged both ways.

    # The command line prints the same answers (its JSON, rounded to 6 places).
    files = []
    for name, image in zip(names, (drawn_digit_png(0), drawn_digit_png(7)), strict=False):
        path = tmp_path / f"{name}.png"
        path.write_bytes(image)
        files.append(str(path))
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    import contextlib

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["predict", run_id, *files]) == 0
    lines = [json.loads(line) for line in printed.getvalue().splitlines()]
    for line, by_file in zip(lines, through_file, strict=False):
        expected = by_file.to_json()
        assert (line["class"], line["probability"], line["out_of_distribution"]) == (
            expected["class"],
            expected["probability"],
            expected["out_of_distribution"],
        )


def test_the_ink_alone_tells_photographs_from_digits_without_the_model() -> None:
    """The out-of-distribution signals that do not depend on the model: every photograph of the
    real-world set (china, flowers) is flagged by its ink alone (shades that blend, marks running off
    the edges), and no digit (drawn, scanned, screenshotted, photographed, touching the edge) is."""
    folder = Path(__file__).parent / "data" / "real_world"
    files = sorted(folder.glob("*.png"))
    info = datasets.info("digits")
    prepared = prediction.prepare([prediction.decode(file.read_bytes()) for file in files], info)
    for file, item in zip(files, prepared, strict=True):
        assert item.ink is not None and item.ink.separation is not None, file.stem
        reasons = prediction._ink_reasons(item)
        if file.stem.startswith("digit_"):
            assert not reasons, (file.stem, reasons)
            assert item.ink.separation >= prediction.MIN_INK_SEPARATION, file.stem
        elif not file.stem.startswith("nondigit_shapes"):
            assert reasons, (file.stem, item.ink)
    small = prediction.prepare([np.zeros((8, 8), np.float32) + np.eye(8, dtype=np.float32)], info)[0]
    assert small.ink is not None and small.ink.separation is None  # Too small to show a texture.

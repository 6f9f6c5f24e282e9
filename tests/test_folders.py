"""The user's own images: folders and zips of class folders, skipped files, caps and unsafe entries."""

from __future__ import annotations

from pathlib import Path

import data_files
import numpy as np
import pytest
from PIL import Image

from cnnlab.data import datasets, folders
from cnnlab.data.info import SplitData
from cnnlab.errors import ArchiveError, DatasetError
from cnnlab.specs import DataSettings


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KERAS_HOME and temporary folder, and no network at all."""
    return data_files.isolate(tmp_path, monkeypatch)


def check_own_data(data: SplitData) -> None:
    assert data.class_names == ("cats", "dogs")
    assert data.image_shape == (16, 16, 3) and data.x_train.dtype == np.float32
    assert data.summary["total"].tolist() == [6, 4]
    assert data.info.size == 10 and not data.info.digit_like
    report = data.skipped
    assert report is not None and report.count == 5
    assert report.by_reason == {
        folders.CORRUPT: 1,
        folders.NOT_AN_IMAGE: 1,
        folders.OUTSIDE_CLASS_FOLDER: 1,
        folders.UNSUPPORTED_FORMAT: 1,
        folders.TOO_LARGE: 1,
    }
    skipped_names = {Path(item.path).name: item for item in report.examples}
    assert set(skipped_names) == {"corrupt.png", "notes.txt", "readme.md", "drawing.svg", "huge.png"}
    assert "The PNG data is corrupt or truncated" in skipped_names["corrupt.png"].detail
    text = report.to_text()
    assert text.startswith("5 file(s) skipped:") and "corrupt.png" in text


def test_own_folder_with_mixed_formats_sizes_and_modes(own_folder: Path) -> None:
    data = datasets.load(DataSettings(dataset=str(own_folder), image_size=16, color_mode="rgb"))
    check_own_data(data)
    everything = np.concatenate([data.x_train, data.x_val, data.x_test])
    assert everything.min() >= 0.0 and everything.max() <= 1.0
    grey = datasets.load(DataSettings(dataset=str(own_folder), image_size=20, color_mode="grayscale"))
    assert grey.image_shape == (20, 20, 1)
    native = datasets.load(DataSettings(dataset=str(own_folder)))
    assert native.image_shape == (64, 64, 3)


def test_own_zip_with_a_wrapper_folder_and_mac_clutter(own_folder: Path, tmp_path: Path) -> None:
    zip_path = data_files.zip_folder(
        own_folder, tmp_path / "pets.zip", extra={"__MACOSX/pets/cats/._a.png": b"junk"}
    )
    data = datasets.load(DataSettings(dataset=str(zip_path), image_size=16, color_mode="rgb"))
    check_own_data(data)
    assert data.info.name == "pets.zip"
    assert list((tmp_path / "system-temp").iterdir()) == []  # The extraction folder was removed.


def test_info_counts_only_images_that_decode_and_says_what_is_left_out(
    own_folder: Path, tmp_path: Path
) -> None:
    loaded = datasets.load(DataSettings(dataset=str(own_folder), image_size=16))
    described = datasets.info(str(own_folder))
    # The oracle is what loading keeps: 12 image files by name, of which one is corrupt and one too large.
    assert described.class_names == ("cats", "dogs") and described.size == loaded.info.size == 10
    assert described.image_shape == (64, 64, 3) and described.available
    assert described.description.startswith("10 readable image(s) in 2 class folder(s)")
    assert "5 other file(s) are left out: 1 file too large, 1 not an image file" in described.description
    assert f"1 {folders.CORRUPT}" in described.description
    zipped = datasets.info(str(data_files.zip_folder(own_folder, tmp_path / "pets.zip")))
    assert zipped.class_names == ("cats", "dogs") and zipped.size == 10
    assert list((tmp_path / "system-temp").iterdir()) == []  # The extraction folder was removed.


def test_an_unset_image_size_is_described_truthfully(tmp_path: Path) -> None:
    # Oracles: what loading gives when the size is left unset.
    folder = tmp_path / "small"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for index in range(3):
            Image.new("L", (20, 20), 40 * index).save(folder / name / f"{index}.png")
    own = datasets.load(DataSettings(dataset=str(folder)))
    label, help_text = datasets.unset_image_size(str(folder))
    assert own.image_shape[:2] == (64, 64) and label == "64x64" and "native" not in label
    assert "resized to one square size; 0 means 64x64" in help_text
    shapes = datasets.load(DataSettings(dataset="shapes", options={"count_per_class": 3}))
    assert datasets.unset_image_size("shapes")[0] == f"{shapes.image_shape[0]}x{shapes.image_shape[1]}"
    digits = datasets.load(DataSettings())
    assert datasets.unset_image_size("digits")[0] == f"native {digits.image_shape[0]}x{digits.image_shape[1]}"
    assert datasets.unset_image_size("mnist")[0] == "native 28x28"


def test_own_images_need_two_classes_of_two_images(tmp_path: Path) -> None:
    single = tmp_path / "single"
    data_files.save(single / "cats" / "a.png", Image.new("RGB", (4, 4)), "PNG")
    data_files.save(single / "cats" / "b.png", Image.new("RGB", (4, 4)), "PNG")
    with pytest.raises(DatasetError, match=r"needs at least 2 class folders with images; found 1 \('cats'\)"):
        datasets.load(DataSettings(dataset=str(single)))
    flat = tmp_path / "flat"
    data_files.save(flat / "a.png", Image.new("RGB", (4, 4)), "PNG")
    with pytest.raises(
        DatasetError, match=r"found 0 \(none\)\. Put the images of each class in its own subfolder"
    ):
        datasets.load(DataSettings(dataset=str(flat)))
    small = tmp_path / "small"
    for name in ("a", "b"):
        data_files.save(small / "cats" / f"{name}.png", Image.new("RGB", (4, 4)), "PNG")
    data_files.save(small / "dogs" / "a.png", Image.new("RGB", (4, 4)), "PNG")
    (small / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    with pytest.raises(DatasetError, match=r"at least 2 usable images; too few in 'dogs' \(1\)\. Add images"):
        datasets.load(DataSettings(dataset=str(small)))
    with pytest.raises(DatasetError, match=r"The own-images dataset takes no options"):
        datasets.load(DataSettings(dataset=str(small), options={"noise": 1}))


def test_own_images_file_count_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folders, "MAXIMUM_FILES", 3)
    folder = tmp_path / "many"
    for number in range(5):
        (folder / "cats").mkdir(parents=True, exist_ok=True)
        (folder / "cats" / f"{number}.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"holds 5 files; the limit is 3\. Use fewer images per class"):
        datasets.info(str(folder))


def test_symbolic_links_in_a_folder_are_not_followed(tmp_path: Path) -> None:
    folder = data_files.make_own_folder(tmp_path / "pets")
    outside = tmp_path / "outside.png"
    data_files.save(outside, Image.new("RGB", (4, 4)), "PNG")
    (folder / "dogs" / "link.png").symlink_to(outside)
    data = datasets.load(DataSettings(dataset=str(folder), image_size=8))
    assert data.skipped is not None and data.skipped.by_reason[folders.LINK] == 1
    assert data.summary["total"].tolist() == [6, 4]


def test_a_zip_with_a_traversal_entry_is_refused(tmp_path: Path) -> None:
    zip_path = data_files.evil_zip(tmp_path / "evil.zip")
    with pytest.raises(ArchiveError, match=r"entry that points outside its folder: '\.\./evil\.txt'"):
        datasets.load(DataSettings(dataset=str(zip_path)))
    with pytest.raises(ArchiveError, match="points outside its folder"):
        datasets.info(str(zip_path))
    assert not any(path.name == "evil.txt" for path in tmp_path.parent.rglob("evil.txt"))

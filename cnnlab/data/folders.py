"""The user's own images: a folder (or an extracted zip) with one subfolder per class.

This is the `keras.utils.image_dataset_from_directory` convention: `cats/1.jpg`, `dogs/2.png`.
PNG, JPEG, GIF, BMP and WebP files of any size and mode are decoded safely and converted to one
size and colour mode. Files that are not images, or are corrupt, are skipped and reported.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from cnnlab.data import decode
from cnnlab.errors import DatasetError, ImageError

DEFAULT_IMAGE_SIZE = 64
MAXIMUM_FILES = 20_000
MAXIMUM_FILE_BYTES = 20_000_000
EXAMPLES_KEPT = 20
_IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}

NOT_AN_IMAGE = "not an image file"
UNSUPPORTED_FORMAT = "unsupported image format"
OUTSIDE_CLASS_FOLDER = "not inside a class folder"
LINK = "symbolic link (not followed)"
TOO_LARGE = "file too large"
CORRUPT = "unreadable image (corrupt, or unsafe to decode)"


@dataclass(frozen=True)
class SkippedFile:
    """One file that was not used, and why."""

    path: str  # relative to the dataset folder
    reason: str  # one of the short reasons above
    detail: str = ""


@dataclass(frozen=True)
class SkippedReport:
    """How many files were skipped, per reason, with the first few as examples."""

    count: int
    by_reason: dict[str, int] = field(default_factory=dict)
    examples: tuple[SkippedFile, ...] = ()

    @classmethod
    def from_files(cls, skipped: Iterable[SkippedFile]) -> SkippedReport:
        """Summarise a list of skipped files."""
        files = list(skipped)
        return cls(len(files), dict(Counter(item.reason for item in files)), tuple(files[:EXAMPLES_KEPT]))

    def to_text(self) -> str:
        """A few lines for a terminal or a page: counts per reason, then examples."""
        if self.count == 0:
            return "No files were skipped."
        lines = [f"{self.count} file(s) skipped:"]
        lines += [f"  {count} {reason}" for reason, count in sorted(self.by_reason.items())]
        lines.append("Examples:")
        for item in self.examples:
            lines.append(f"  {item.path}: {item.reason}" + (f" ({item.detail})" if item.detail else ""))
        return "\n".join(lines)


@dataclass(frozen=True)
class FolderScan:
    """What a folder holds, from names alone (nothing decoded)."""

    root: PurePosixPath  # the folder holding the class folders, relative to the given folder
    class_names: tuple[str, ...]
    files: tuple[tuple[PurePosixPath, int], ...]  # (path relative to the given folder, class index)
    skipped: tuple[SkippedFile, ...]


def _ignored(path: PurePosixPath) -> bool:
    """Hidden files and operating-system clutter, ignored without a report."""
    return any(part.startswith(".") or part in _IGNORED_NAMES for part in path.parts)


def scan_paths(paths: Iterable[PurePosixPath], where: str = "The folder") -> FolderScan:
    """Sort relative file paths into classes by their first folder; nothing is read."""
    kept = sorted(path for path in paths if not _ignored(path))
    if len(kept) > MAXIMUM_FILES:
        raise DatasetError(
            f"{where} holds {len(kept):,} files; the limit is {MAXIMUM_FILES:,}. "
            "Use fewer images per class (a few hundred each is plenty to learn from)."
        )
    root = PurePosixPath(".")
    relative = kept
    # Descend through wrapper folders ("pets/cats/1.jpg" when the zip holds the folder itself).
    while (
        relative
        and any(len(path.parts) >= 3 for path in relative)
        and len({path.parts[0] for path in relative}) == 1
    ):
        root = root / relative[0].parts[0]
        relative = [PurePosixPath(*path.parts[1:]) for path in relative]
    class_names = tuple(sorted({path.parts[0] for path in relative if len(path.parts) >= 2}))
    class_index = {name: index for index, name in enumerate(class_names)}
    files: list[tuple[PurePosixPath, int]] = []
    skipped: list[SkippedFile] = []
    for path in relative:
        full = root / path
        suffix = path.suffix.lower()
        if len(path.parts) < 2:
            skipped.append(
                SkippedFile(str(full), OUTSIDE_CLASS_FOLDER, "put it in a subfolder named after its class")
            )
        elif suffix in decode.SUPPORTED_EXTENSIONS:
            files.append((full, class_index[path.parts[0]]))
        elif suffix in (".svg", ".tif", ".tiff", ".heic", ".heif", ".avif", ".ico", ".psd"):
            skipped.append(
                SkippedFile(str(full), UNSUPPORTED_FORMAT, f"{suffix} files are not read; convert to PNG")
            )
        else:
            skipped.append(SkippedFile(str(full), NOT_AN_IMAGE, f"extension {suffix or '(none)'}"))
    return FolderScan(root, class_names, tuple(files), tuple(skipped))


def scan_folder(folder: Path, display_name: str | None = None) -> FolderScan:
    """Scan a folder on disk without following symbolic links."""
    folder = Path(folder)
    where = display_name or f"The folder '{folder}'"
    if not folder.is_dir():
        raise DatasetError(f"The folder '{folder}' does not exist or is not a folder. Check the path.")
    paths: list[PurePosixPath] = []
    links: list[SkippedFile] = []
    for directory, subdirectories, names in os.walk(folder, followlinks=False):
        base = Path(directory)
        for name in names + [entry for entry in subdirectories if (base / entry).is_symlink()]:
            relative = PurePosixPath((base / name).relative_to(folder).as_posix())
            if (base / name).is_symlink():
                if not _ignored(relative):
                    links.append(SkippedFile(str(relative), LINK))
            else:
                paths.append(relative)
        if len(paths) > MAXIMUM_FILES:
            break
    scan = scan_paths(paths, where)
    return FolderScan(scan.root, scan.class_names, scan.files, scan.skipped + tuple(links))


def _read_one(path: Path, size: int, channels: int) -> np.ndarray:
    """Decode one file and convert it to a uint8 (size, size, channels) array."""
    image = decode.decode_image(path.read_bytes(), max_bytes=MAXIMUM_FILE_BYTES, draft_size=(size, size))
    image = image.convert("L" if channels == 1 else "RGB")
    resized = image.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(resized, dtype=np.uint8)
    return array[:, :, np.newaxis] if channels == 1 else array


def _try_read(folder: Path, relative: PurePosixPath, size: int, channels: int) -> np.ndarray | SkippedFile:
    """One file as a uint8 (size, size, channels) array, or why it was skipped."""
    try:
        byte_count = (folder / relative).stat().st_size
        if byte_count > MAXIMUM_FILE_BYTES:
            return SkippedFile(
                str(relative), TOO_LARGE, f"{byte_count:,} bytes; the limit is {MAXIMUM_FILE_BYTES:,}"
            )
        return _read_one(folder / relative, size, channels)
    except ImageError as error:
        return SkippedFile(str(relative), CORRUPT, str(error))
    except OSError as error:
        return SkippedFile(str(relative), CORRUPT, error.strerror or str(error))


def readable(folder: Path, display_name: str | None = None) -> tuple[FolderScan, SkippedReport]:
    """Scan a folder and decode every image in it: the files that decode, and a report of the rest.

    This is what `load_folder` reads, without keeping the pixels: a description that counts only
    images a model can be given.
    """
    scan = scan_folder(Path(folder), display_name)
    kept: list[tuple[PurePosixPath, int]] = []
    skipped = list(scan.skipped)
    for relative, class_index in scan.files:
        read = _try_read(Path(folder), relative, 8, 1)
        if isinstance(read, SkippedFile):
            skipped.append(read)
        else:
            kept.append((relative, class_index))
    return FolderScan(scan.root, scan.class_names, tuple(kept), ()), SkippedReport.from_files(skipped)


def check_classes(class_names: tuple[str, ...], counts: list[int], where: str) -> None:
    """Raise DatasetError unless there are 2 or more classes with 2 or more usable images each."""
    if len(class_names) < 2:
        found = ", ".join(repr(name) for name in class_names) or "none"
        raise DatasetError(
            f"{where} needs at least 2 class folders with images; found {len(class_names)} ({found}). "
            "Put the images of each class in its own subfolder, e.g. cats/1.jpg and dogs/1.jpg."
        )
    too_small = [f"{name!r} ({count})" for name, count in zip(class_names, counts, strict=True) if count < 2]
    if too_small:
        raise DatasetError(
            f"Every class needs at least 2 usable images; too few in {', '.join(too_small)}. "
            "Add images to these folders or remove them."
        )


def load_folder(
    folder: Path,
    *,
    image_size: int = DEFAULT_IMAGE_SIZE,
    channels: int = 3,
    progress: Callable[[float, str], None] | None = None,
    display_name: str | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], SkippedReport, tuple[str, ...]]:
    """Read a class-per-subfolder image folder: (uint8 NHWC images, int64 labels, classes, report,
    each image's path inside the folder).

    `display_name` names the folder in messages (for an extracted zip, the zip's name).
    """
    folder = Path(folder)
    where = display_name or f"The folder '{folder}'"
    scan = scan_folder(folder, where)
    skipped = list(scan.skipped)
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    total = max(1, len(scan.files))
    for number, (relative, class_index) in enumerate(scan.files, 1):
        if progress is not None and number % 50 == 1:
            progress((number - 1) / total, f"Reading image {number} of {total}")
        read = _try_read(folder, relative, image_size, channels)
        if isinstance(read, SkippedFile):
            skipped.append(read)
        else:
            arrays.append(read)
            labels.append(class_index)
            names.append(relative.as_posix())
    if progress is not None:
        progress(1.0, f"Read {len(scan.files)} image file(s)")
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(scan.class_names)).tolist()
    check_classes(scan.class_names, counts, where)
    stacked = np.stack(arrays) if arrays else np.empty((0, image_size, image_size, channels), np.uint8)
    report = SkippedReport.from_files(skipped)
    return stacked, np.asarray(labels, dtype=np.int64), scan.class_names, report, tuple(names)

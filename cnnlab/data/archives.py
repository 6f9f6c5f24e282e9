"""Safe extraction of zip archives the user uploads.

An uploaded zip is untrusted: it may try to write outside its folder (`../` entries, absolute
paths, drive letters, symbolic links) or expand to far more data than it occupies (a zip bomb).
`safe_extract` checks every entry before writing anything, then counts the bytes actually
written, and `extracted` does all of that inside a private temporary folder that is removed
afterwards.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from cnnlab.errors import ArchiveError

ZipSource = str | os.PathLike | bytes | bytearray | BinaryIO

DEFAULT_MAX_TOTAL_BYTES = 1_000_000_000  # 1 GB uncompressed in all
DEFAULT_MAX_FILES = 20_000
_CHUNK_BYTES = 1 << 20
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of an archive that passed the checks: its zip entry and its safe relative path."""

    info: zipfile.ZipInfo
    relative_path: PurePosixPath
    is_directory: bool


def _describe(source: ZipSource) -> str:
    """A short name of the archive for messages: its file's name, never the server's folders."""
    if isinstance(source, str | os.PathLike):
        return f"'{Path(os.fspath(source)).name}'"
    return "the uploaded archive"


def _open(source: ZipSource) -> zipfile.ZipFile:
    """Open a zip from a path, bytes or a binary file object, or raise ArchiveError."""
    try:
        if isinstance(source, bytes | bytearray):
            return zipfile.ZipFile(io.BytesIO(bytes(source)))
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if not path.is_file():
                raise ArchiveError(
                    f"The archive {_describe(source)} does not exist or is not a file. Check the path."
                )
            return zipfile.ZipFile(path)
        return zipfile.ZipFile(source)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise ArchiveError(
            f"{_describe(source).capitalize()} is not a valid zip file ({error}). "
            "Create it again with a standard zip tool (for example 'Compress' or 'Send to > Zip')."
        ) from None


def _safe_relative_path(name: str) -> PurePosixPath:
    """The entry's path inside the destination, or ArchiveError when it would escape it."""
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or _DRIVE_LETTER.match(normalised):
        raise ArchiveError(
            f"The archive contains an entry with an absolute path: {name!r}. "
            "Archives must only contain relative paths; zip the folder itself, not its full path."
        )
    parts = [part for part in normalised.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise ArchiveError(
            f"The archive contains an entry that points outside its folder: {name!r}. "
            "Nothing was extracted. Remove '..' entries and zip the folder again."
        )
    if any("\x00" in part or _DRIVE_LETTER.match(part) for part in parts):
        raise ArchiveError(
            f"The archive contains an entry with an invalid name: {name!r}. Rename it and zip again."
        )
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def check_entries(
    source: ZipSource | zipfile.ZipFile,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> list[ArchiveEntry]:
    """Check every entry of a zip without extracting anything; return the entries.

    Raises ArchiveError for a path that leaves the folder (`../`, an absolute path, a drive
    letter), a symbolic link or other special file, an encrypted entry, more than `max_files`
    files, or a declared uncompressed size above `max_total_bytes`.
    """
    archive = source if isinstance(source, zipfile.ZipFile) else _open(source)
    try:
        entries: list[ArchiveEntry] = []
        declared_bytes = 0
        file_count = 0
        for entry in archive.infolist():
            relative_path = _safe_relative_path(entry.filename)
            mode = entry.external_attr >> 16
            file_type = stat.S_IFMT(mode)
            if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "a special file"
                raise ArchiveError(
                    f"The archive entry {entry.filename!r} is {kind}; links are never followed. "
                    "Zip the real files instead (for example with 'zip -r', without '--symlinks')."
                )
            if entry.flag_bits & 0x1:
                raise ArchiveError(
                    f"The archive entry {entry.filename!r} is password-protected. "
                    "Upload an archive without a password."
                )
            is_directory = entry.is_dir() or file_type == stat.S_IFDIR
            if not is_directory:
                file_count += 1
                declared_bytes += entry.file_size
            if file_count > max_files:
                raise ArchiveError(
                    f"The archive holds more than {max_files:,} files. "
                    "Upload fewer images (a subset per class is enough for a classroom run)."
                )
            if declared_bytes > max_total_bytes:
                raise ArchiveError(
                    f"The archive would expand to more than {max_total_bytes:,} bytes "
                    f"(declared so far: {declared_bytes:,}). Upload smaller or fewer images."
                )
            entries.append(ArchiveEntry(entry, relative_path, is_directory))
        return entries
    finally:
        if archive is not source:
            archive.close()


def _copy_counting(
    archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: Path, written_so_far: int, max_total_bytes: int
) -> int:
    """Copy one entry to `target`, stopping as soon as the running total exceeds the cap."""
    written = written_so_far
    with archive.open(entry) as reader, open(target, "xb") as writer:
        while True:
            chunk = reader.read(_CHUNK_BYTES)
            if not chunk:
                break
            written += len(chunk)
            if written > max_total_bytes:
                raise ArchiveError(
                    f"The archive expands to more than {max_total_bytes:,} bytes "
                    f"(entry {entry.filename!r} is larger than it declares). "
                    "Extraction stopped; upload smaller or fewer images."
                )
            writer.write(chunk)
    return written


def safe_extract(
    source: ZipSource,
    destination: Path,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> Path:
    """Extract a zip (path, bytes or binary file) into `destination` safely; return `destination`.

    Every entry is checked before anything is written (see `check_entries`); while extracting,
    the bytes actually produced are counted against `max_total_bytes`. On any error the files
    written so far are removed and ArchiveError is raised.
    """
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    archive = _open(source)
    created: list[Path] = []
    try:
        entries = check_entries(archive, max_total_bytes=max_total_bytes, max_files=max_files)
        written = 0
        for entry in entries:
            target = (root / entry.relative_path).resolve()
            # A second line of defence: the resolved path must stay inside the destination.
            if target != root and root not in target.parents:
                raise ArchiveError(
                    f"The archive entry {entry.info.filename!r} resolves outside the destination folder. "
                    "Nothing more was extracted."
                )
            if entry.is_directory:
                if not target.exists():
                    target.mkdir(parents=True)
                    created.append(target)
                continue
            for parent in reversed(target.relative_to(root).parents):
                folder = root / parent
                if not folder.exists():
                    folder.mkdir()
                    created.append(folder)
            if target.exists():
                target.unlink()
            created.append(target)
            written = _copy_counting(archive, entry.info, target, written, max_total_bytes)
        return destination
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, RuntimeError) as error:
        _remove(created)
        raise ArchiveError(
            f"{_describe(source).capitalize()} could not be extracted: {error}. "
            "It may be damaged or use an unsupported compression; create it again with a standard zip tool."
        ) from None
    except BaseException:
        _remove(created)
        raise
    finally:
        archive.close()


def _remove(created: list[Path]) -> None:
    """Remove files and folders created by a failed extraction, newest first."""
    for path in reversed(created):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass


@contextmanager
def extracted(
    source: ZipSource,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> Iterator[Path]:
    """Extract a zip into a private temporary folder, yield the folder, and remove it afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="cnnlab-archive-"))
    try:
        safe_extract(source, folder, max_total_bytes=max_total_bytes, max_files=max_files)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)

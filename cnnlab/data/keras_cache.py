"""The Keras dataset cache: where the standard sets' files live, whether they are there, and downloads.

The files live where `keras.datasets` keeps them, under `$KERAS_HOME/datasets` (default
`~/.keras/datasets`). A missing file is downloaded once (with progress) when the network allows;
otherwise `DatasetUnavailable` names the exact file and the folder to place it in.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cnnlab.data.standard_sets import KERAS_ARCHIVE_NAMES, SETS, Download, StandardSet
from cnnlab.errors import DatasetError, DatasetUnavailable

Progress = Callable[[float, str], None]
# Tests replace this to simulate the network; nothing else should.
_open_url = urllib.request.urlopen


def keras_home() -> Path:
    """The Keras cache folder: `$KERAS_HOME`, or `~/.keras` when it is not set."""
    configured = os.environ.get("KERAS_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".keras"


def datasets_folder() -> Path:
    """The folder holding the dataset files: `$KERAS_HOME/datasets`."""
    return keras_home() / "datasets"


def _present(standard: StandardSet) -> Path | None:
    """The first complete local copy of a set (a file, or an extracted folder), or None."""
    folder = datasets_folder()
    if all((folder / download.relative_path).is_file() for download in standard.downloads):
        return folder / standard.downloads[0].relative_path
    for relative in standard.extracted_folders:
        if (folder / relative).is_dir():
            return folder / relative
    keras_archive = KERAS_ARCHIVE_NAMES.get(standard.name)
    if keras_archive and (folder / keras_archive).is_file():
        return folder / keras_archive
    return None


def availability(name: str) -> tuple[bool, str | None]:
    """Whether a set can be read now without the network, and if not, why (no download)."""
    standard = SETS[name]
    if _present(standard) is not None:
        return True, None
    return False, _missing_message(standard, reason="not downloaded yet", online_hint=True)


def _missing_message(standard: StandardSet, reason: str, online_hint: bool = False) -> str:
    """Say which file is missing, where to place it, and where to get it."""
    folder = datasets_folder()
    missing = [download for download in standard.downloads if not (folder / download.relative_path).is_file()]
    missing = missing or list(standard.downloads)
    target_folder = (folder / missing[0].relative_path).parent
    files = ", ".join(str(folder / download.relative_path) for download in missing)
    urls = ", ".join(download.url for download in missing)
    text = (
        f"{standard.title} is not available ({reason}): missing {files}. "
        f"Download {urls} ({standard.download_megabytes} MB) and place {'it' if len(missing) == 1 else 'them'} "
        f"in the folder {target_folder} "
        "(set the KERAS_HOME environment variable to use another folder)"
    )
    return text + (", or load it once while online to download it automatically." if online_hint else ".")


_NAME_LOOKUP_FAILURES = (
    "name resolution",
    "Name or service not known",
    "nodename nor servname",
    "getaddrinfo",
)


def _cause(error: BaseException, url: str) -> str:
    """Why a download failed, in words (no errno numbers): "no internet connection", a HTTP status, ..."""
    reason = getattr(error, "reason", None) or error
    host = urllib.parse.urlsplit(url).hostname or url
    text = str(reason)
    if isinstance(reason, socket.gaierror) or any(marker in text for marker in _NAME_LOOKUP_FAILURES):
        return f"{host} cannot be reached, this machine seems to have no internet connection"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"{host} did not answer in time"
    if isinstance(error, urllib.error.HTTPError):
        return f"the server answered HTTP {error.code} {error.reason}"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return text


def _download(download: Download, progress: Progress | None, label: str) -> None:
    """Fetch one file into the cache, checking its SHA-256; the partial file never stays behind."""
    target = datasets_folder() / download.relative_path
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    hasher = hashlib.sha256()
    try:
        with _open_url(download.url, timeout=30) as response, open(partial, "wb") as writer:
            total = int(response.headers.get("Content-Length") or 0)
            received = 0
            while chunk := response.read(1 << 20):
                writer.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
                if progress is not None:
                    fraction = received / total if total else 0.0
                    progress(min(fraction, 1.0), f"Downloading {label}: {received / 1e6:.1f} MB")
        if download.sha256 is not None and hasher.hexdigest() != download.sha256:
            raise DatasetError(
                f"the downloaded file's SHA-256 is {hasher.hexdigest()}, expected {download.sha256}"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def ensure_files(name: str, *, allow_download: bool = True, progress: Progress | None = None) -> Path:
    """The local copy of a set, downloading it first when missing and allowed."""
    standard = SETS[name]
    present = _present(standard)
    if present is not None:
        return present
    if not allow_download or os.environ.get("CNNLAB_OFFLINE", "").strip() not in ("", "0"):
        raise DatasetUnavailable(_missing_message(standard, "offline mode, downloads are switched off"))
    folder = datasets_folder()
    pending = [download for download in standard.downloads if not (folder / download.relative_path).is_file()]
    for number, download in enumerate(pending):

        def scaled(fraction: float, message: str, number: int = number) -> None:
            if progress is not None:
                progress((number + fraction) / len(pending), message)

        try:
            _download(download, scaled, standard.title)
        except (OSError, urllib.error.URLError, DatasetError, ValueError) as error:
            raise DatasetUnavailable(
                _missing_message(
                    standard, f"the download from {download.url} failed: {_cause(error, download.url)}"
                )
            ) from None
    return folder / standard.downloads[0].relative_path

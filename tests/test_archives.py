"""Safe zip extraction: traversal, absolute paths, drive letters, links, bombs, corrupt archives."""

from __future__ import annotations

import io
import stat
import struct
import tempfile
import zipfile
from pathlib import Path

import pytest

from cnnlab.data import archives
from cnnlab.errors import ArchiveError


@pytest.fixture(autouse=True)
def private_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary folders made by the code under test go inside tmp_path."""
    folder = tmp_path / "system-temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def make_zip(entries: dict[str, bytes] | list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    """A zip archive in memory holding the given names (or ZipInfo objects) and contents."""
    buffer = io.BytesIO()
    items = entries.items() if isinstance(entries, dict) else entries
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in items:
            archive.writestr(name, content)
    return buffer.getvalue()


def all_files(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")}


def test_extracts_nested_folders_from_bytes_path_and_file_object(tmp_path: Path) -> None:
    data = make_zip({"cats/one.txt": b"meow", "dogs/puppies/two.txt": b"woof", "empty/": b""})
    zip_path = tmp_path / "pets.zip"
    zip_path.write_bytes(data)
    for number, source in enumerate([data, zip_path, str(zip_path), io.BytesIO(data)]):
        destination = tmp_path / f"out{number}"
        assert archives.safe_extract(source, destination) == destination
        assert (destination / "cats" / "one.txt").read_bytes() == b"meow"
        assert (destination / "dogs" / "puppies" / "two.txt").read_bytes() == b"woof"
        assert (destination / "empty").is_dir()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../evil.txt", "points outside its folder"),
        ("cats/../../evil.txt", "points outside its folder"),
        ("..\\evil.txt", "points outside its folder"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
        ("C:\\Windows\\evil.txt", "absolute path"),
        ("cats/D:evil.txt", "invalid name"),
    ],
)
def test_rejects_entries_that_leave_the_folder_and_writes_nothing(
    tmp_path: Path, name: str, expected: str
) -> None:
    data = make_zip([("cats/first.txt", b"fine"), (name, b"evil")])
    destination = tmp_path / "out"
    before = all_files(tmp_path)
    with pytest.raises(ArchiveError, match=expected) as caught:
        archives.safe_extract(data, destination)
    assert repr(name) in str(caught.value)
    # Nothing was extracted, not even the harmless entry before the bad one.
    assert all_files(tmp_path) - before <= {"out"}
    assert list(destination.iterdir()) == []


def test_rejects_symbolic_link_entries(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("cats/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = make_zip([(link, b"/etc/passwd")])
    with pytest.raises(ArchiveError, match="is a symbolic link; links are never followed") as caught:
        archives.safe_extract(data, tmp_path / "out")
    assert "'cats/link.png'" in str(caught.value)
    assert not (tmp_path / "out" / "cats").exists()


def test_rejects_password_protected_entries(tmp_path: Path) -> None:
    data = bytearray(make_zip({"cats/secret.png": b"data"}))
    # Set the "encrypted" bit of the general-purpose flags, in the local and central headers.
    data[6] |= 0x1
    data[data.rfind(b"PK\x01\x02") + 8] |= 0x1
    data = bytes(data)
    with pytest.raises(ArchiveError, match="password-protected"):
        archives.safe_extract(data, tmp_path / "out")


def test_caps_the_number_of_files(tmp_path: Path) -> None:
    data = make_zip({f"cats/{number}.txt": b"x" for number in range(4)})
    with pytest.raises(ArchiveError, match="more than 3 files"):
        archives.safe_extract(data, tmp_path / "out", max_files=3)
    assert archives.safe_extract(data, tmp_path / "ok", max_files=4).is_dir()


def test_caps_the_declared_uncompressed_size(tmp_path: Path) -> None:
    # 200 kB of zeros compresses to a few hundred bytes: a miniature zip bomb.
    data = make_zip({"cats/zeros.txt": bytes(200_000)})
    assert len(data) < 2_000
    with pytest.raises(ArchiveError, match="would expand to more than 100,000 bytes") as caught:
        archives.safe_extract(data, tmp_path / "out", max_total_bytes=100_000)
    assert "declared so far: 200,000" in str(caught.value)
    assert not (tmp_path / "out" / "cats").exists()


def test_counts_actual_bytes_even_when_the_declared_check_is_bypassed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_zip({"cats/a.txt": bytes(60_000), "cats/b.txt": bytes(60_000)})
    original = archives.check_entries

    def trusting_check(source: zipfile.ZipFile, **limits: int) -> list[archives.ArchiveEntry]:
        return original(source, max_total_bytes=10**12, max_files=limits["max_files"])

    monkeypatch.setattr(archives, "check_entries", trusting_check)
    with pytest.raises(ArchiveError, match="expands to more than 100,000 bytes"):
        archives.safe_extract(data, tmp_path / "out", max_total_bytes=100_000)
    # The partly written files were removed again.
    assert list((tmp_path / "out").iterdir()) == []


def test_an_entry_larger_than_it_declares_is_rejected_and_cleaned_up(tmp_path: Path) -> None:
    data = bytearray(make_zip({"cats/big.txt": bytes(50_000)}))
    # Rewrite the declared uncompressed size (local header and central directory) to 10 bytes.
    local_size_offset = 22
    assert struct.unpack_from("<I", data, local_size_offset)[0] == 50_000
    struct.pack_into("<I", data, local_size_offset, 10)
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)
    with pytest.raises(ArchiveError, match="could not be extracted"):
        archives.safe_extract(bytes(data), tmp_path / "out")
    assert not (tmp_path / "out" / "cats" / "big.txt").exists()


def test_corrupt_and_missing_archives_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="is not a valid zip file"):
        archives.safe_extract(b"this is not a zip file", tmp_path / "out")
    truncated = make_zip({"cats/a.txt": b"x" * 1000})[:40]
    with pytest.raises(ArchiveError, match="not a valid zip file"):
        archives.safe_extract(truncated, tmp_path / "out")
    with pytest.raises(ArchiveError, match=r"'missing\.zip' does not exist") as refused:
        archives.safe_extract(tmp_path / "missing.zip", tmp_path / "out")
    assert str(tmp_path) not in str(refused.value)  # The file's name, not the server's folders.


def test_extracted_uses_a_private_folder_and_removes_it(private_temporary_folder: Path) -> None:
    data = make_zip({"cats/a.txt": b"a", "dogs/b.txt": b"b"})
    with archives.extracted(data) as folder:
        assert folder.parent == private_temporary_folder
        assert (folder / "cats" / "a.txt").read_bytes() == b"a"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not folder.exists()
    with pytest.raises(RuntimeError), archives.extracted(data) as folder:
        raise RuntimeError("the caller failed")
    assert not folder.exists()
    with pytest.raises(ArchiveError), archives.extracted(make_zip({"../x": b""})):
        pass
    assert list(private_temporary_folder.iterdir()) == []


def test_check_entries_lists_files_without_extracting(tmp_path: Path) -> None:
    entries = archives.check_entries(make_zip({"cats/a.png": b"a", "cats/": b"", "./dogs/b.png": b"b"}))
    files = [str(entry.relative_path) for entry in entries if not entry.is_directory]
    assert files == ["cats/a.png", "dogs/b.png"]
    assert list(tmp_path.iterdir()) == [tmp_path / "system-temp"]

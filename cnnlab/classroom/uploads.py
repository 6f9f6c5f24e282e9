"""Whose an uploaded zip is: each user's uploads in a folder of their own, a class folder for shared ones.

Uploads live under `$CNNLAB_HOME/uploads/`. Without sign-in the local user keeps them there, as
always. In a class, a user's uploads go to `uploads/user-<hash of their id>/` and a teacher may put
one in `uploads/class/`, shared with everyone. A student may use their own uploads and the class's;
a teacher and the local user may use any upload. A setup (a link, an import, a run request) that
names another student's upload is refused with the same words as another student's run.

A link never holds a server path: it names an upload "upload:<file name>" (`setup_for_link`), and
the server finds that file for the user who opens it (`setup_from_link`): in their own uploads, then
the class's (a teacher and the local user: anyone's).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from cnnlab import share
from cnnlab.classroom.users import Role, User
from cnnlab.data import datasets

UPLOADS = "uploads"
CLASS_FOLDER = "class"
LINK_PREFIX = "upload:"  # how a link names an upload: "upload:pets-3f9a0c1d2e4b.zip"


def uploads_root(home: Path) -> Path:
    """The folder that holds every upload of this server."""
    return home / UPLOADS


def class_folder(home: Path) -> Path:
    """Where a teacher's uploads shared with the class are kept."""
    return uploads_root(home) / CLASS_FOLDER


def folder_of(home: Path, user: User) -> Path:
    """Where `user`'s own uploads are kept (the local user: the uploads folder itself, as before)."""
    if user.role == Role.LOCAL:
        return uploads_root(home)
    return uploads_root(home) / f"user-{hashlib.sha256(user.id.encode()).hexdigest()[:16]}"


def _resolved(dataset: str) -> Path | None:
    try:
        return Path(dataset).expanduser().resolve()
    except (ValueError, OSError, RuntimeError):
        return None  # Not a path at all (a NUL byte, an unknown ~user, a loop of links).


def is_upload(home: Path, dataset: str) -> bool:
    """True when `dataset` names a file or folder inside this server's uploads folder."""
    path = _resolved(dataset)
    return path is not None and path.is_relative_to(uploads_root(home).resolve())


def may_use(home: Path, user: User, dataset: str) -> bool:
    """True when `user` may train on `dataset`: a built-in set, or an upload that is theirs or the class's.

    Teachers and the local user may use any upload; nobody may name a folder outside the uploads.
    """
    if dataset in {info.name for info in datasets.registry()}:
        return True
    if not is_upload(home, dataset):
        return False
    if user.sees_everything:
        return True
    path = _resolved(dataset)
    assert path is not None  # is_upload resolved it.
    return any(
        path.is_relative_to(folder.resolve()) for folder in (folder_of(home, user), class_folder(home))
    )


def link_name(home: Path, dataset: str) -> str:
    """How a link names `dataset`: an upload as "upload:<file name>" (no server folder), anything else as it is."""
    return f"{LINK_PREFIX}{Path(dataset).name}" if is_upload(home, dataset) else dataset


def resolve_link_name(home: Path, user: User, dataset: str) -> str:
    """The upload "upload:<file name>" stands for to `user`: their own, else the class's (a teacher or the
    local user: anyone's) file of that name; `dataset` as it is when it is no such name or none is found."""
    if not dataset.startswith(LINK_PREFIX):
        return dataset
    name = dataset.removeprefix(LINK_PREFIX)
    if not name or Path(name).name != name or name in (".", ".."):
        return dataset  # A name with a folder in it names nothing here.
    folders = [folder_of(home, user), class_folder(home)]
    if user.sees_everything:
        folders += sorted(uploads_root(home).glob("user-*"))
    for folder in folders:
        if (folder / name).is_file():
            return str(folder / name)
    return dataset


def setup_for_link(home: Path, setup: share.Setup) -> share.Setup:
    """`setup` as a link carries it: an upload named by its file only (`link_name`)."""
    named = link_name(home, setup.data.dataset)
    if named == setup.data.dataset:
        return setup
    return share.Setup(dataclasses.replace(setup.data, dataset=named), setup.model, setup.training)


def setup_from_link(home: Path, user: User, setup: share.Setup) -> share.Setup:
    """`setup` from a link, with an upload it names by file found for `user` (`resolve_link_name`)."""
    found = resolve_link_name(home, user, setup.data.dataset)
    if found == setup.data.dataset:
        return setup
    return share.Setup(dataclasses.replace(setup.data, dataset=found), setup.model, setup.training)

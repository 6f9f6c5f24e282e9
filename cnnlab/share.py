"""A setup (data, model, training) as a short URL-safe token, so a link opens the same setup."""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass
from typing import Any

from cnnlab.errors import SpecError
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings


@dataclass(frozen=True)
class Setup:
    """What a user has chosen so far: the data, the model and the training settings."""

    data: DataSettings
    model: ModelSpec
    training: TrainingSettings


MAX_SETUP_BYTES = 1024 * 1024  # A setup is a few KB; a link that unpacks to more is refused.


def to_payload(setup: Setup) -> dict[str, Any]:
    """The setup as the JSON object a link holds: data, model and training settings."""
    return {
        "data": setup.data.to_dict(),
        "model": setup.model.to_dict(),
        "training": setup.training.to_dict(),
    }


def pack(content: dict[str, Any]) -> str:
    """A JSON object as compressed, URL-safe base64 (what `payload` reads back)."""
    packed = zlib.compress(json.dumps(content, separators=(",", ":")).encode(), level=9)
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def encode(setup: Setup) -> str:
    """The setup as compressed, URL-safe base64 JSON."""
    return pack(to_payload(setup))


def _inflate(packed: bytes) -> bytes:
    """The decompressed setup; SpecError when it would exceed `MAX_SETUP_BYTES` (a compression bomb)."""
    inflater = zlib.decompressobj()
    content = inflater.decompress(packed, MAX_SETUP_BYTES + 1)
    if len(content) > MAX_SETUP_BYTES or inflater.unconsumed_tail:
        raise SpecError(
            f"The setup in this link unpacks to more than {MAX_SETUP_BYTES // 1024} KB, far more than any "
            "model CNN Lab builds; it was refused. Ask for the link again, or start from the default setup."
        )
    return content


def payload(token: str) -> dict[str, Any]:
    """The JSON object in a token made by `encode`; SpecError if the link is damaged beyond reading."""
    try:
        packed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        content = json.loads(_inflate(packed).decode())
    except (binascii.Error, zlib.error, ValueError, UnicodeDecodeError, RecursionError):
        raise SpecError(
            f"The setup in this link cannot be read (got {len(token)} characters starting {token[:12]!r}). "
            "Ask for the link again, or start from the default setup."
        ) from None
    if not isinstance(content, dict):
        raise SpecError(
            f"The setup in this link is incomplete (got {type(content).__name__}); it needs data, model and "
            "training settings. Ask for the link again, or start from the default setup."
        )
    return content


def decode(token: str) -> Setup:
    """The setup in a token made by `encode`; SpecError if the link is damaged or outdated."""
    return from_payload(payload(token))


def from_payload(content: dict[str, Any]) -> Setup:
    """The setup in a link's JSON object (see `to_payload`); SpecError if it is incomplete or invalid."""
    if set(content) != {"data", "model", "training"}:
        raise SpecError(
            f"The setup in this link is incomplete (got {sorted(content)}); it needs data, model and training "
            "settings. Ask for the link again, or start from the default setup."
        )
    try:
        return Setup(
            DataSettings.from_dict(content["data"]),
            ModelSpec.from_dict(content["model"]),
            TrainingSettings.from_dict(content["training"]),
        )
    except SpecError as error:
        raise SpecError(
            f"The setup in this link cannot be used: {error} Ask for the link again, or start from the "
            "default setup."
        ) from None

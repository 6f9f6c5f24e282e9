"""A setup (data, model, training) as a short URL-safe token, so a link opens the same setup."""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass

from cnnlab.errors import SpecError
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings


@dataclass(frozen=True)
class Setup:
    """What a user has chosen so far: the data, the model and the training settings."""

    data: DataSettings
    model: ModelSpec
    training: TrainingSettings


def encode(setup: Setup) -> str:
    """The setup as compressed, URL-safe base64 JSON."""
    payload = {
        "data": setup.data.to_dict(),
        "model": setup.model.to_dict(),
        "training": setup.training.to_dict(),
    }
    packed = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), level=9)
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode(token: str) -> Setup:
    """The setup in a token made by `encode`; SpecError if the link is damaged or outdated."""
    try:
        packed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(zlib.decompress(packed, bufsize=1 << 16).decode())
    except (binascii.Error, zlib.error, ValueError, UnicodeDecodeError):
        raise SpecError(
            f"The setup in this link cannot be read (got {len(token)} characters starting {token[:12]!r}). "
            "Ask for the link again, or start from the default setup."
        ) from None
    if not isinstance(payload, dict) or set(payload) != {"data", "model", "training"}:
        got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise SpecError(
            f"The setup in this link is incomplete (got {got}); it needs data, model and training "
            "settings. Ask for the link again, or start from the default setup."
        )
    try:
        return Setup(
            DataSettings.from_dict(payload["data"]),
            ModelSpec.from_dict(payload["model"]),
            TrainingSettings.from_dict(payload["training"]),
        )
    except SpecError as error:
        raise SpecError(
            f"The setup in this link cannot be used: {error} Ask for the link again, or start from the "
            "default setup."
        ) from None

"""Loading a model file a user supplies, without running any code it carries.

A `.keras` file is a zip of `config.json` (the architecture), `metadata.json` and the weights.
Loading one can run Python code in two ways: a `Lambda` layer stores its function as Python
bytecode, and a custom class is imported from a module named in the file. So a user's file is
checked first (size, zip layout, the architecture's classes), refused with a message saying why,
and only then given to `keras.saving.load_model(..., safe_mode=True)`, which refuses lambdas by
itself as a second guard. Legacy HDF5 (`.h5`) and SavedModel files are refused: they cannot be
checked this way, and an HDF5 `Lambda` layer is deserialised from raw bytecode.

A model file CNN Lab hands out can carry what it was trained on (`with_training_data`: the
dataset, its classes, whether it is digit-like, and the out-of-distribution calibration) as extra
zip members Keras ignores; `training_data` reads them back, so an uploaded CNN Lab file is
prepared exactly like its run's images. A file from elsewhere has none, and the user chooses.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.data.info import DatasetInfo
from cnnlab.errors import CnnLabError
from cnnlab.trained.calibration import Calibration

if TYPE_CHECKING:
    import keras

MAX_MODEL_BYTES = 200 * 1024 * 1024
MAX_UNPACKED_BYTES = 400 * 1024 * 1024
REQUIRED_MEMBERS = ("config.json", "metadata.json")
UNSAFE_CLASSES = {
    "Lambda": "a Lambda layer, whose Python function would be run to load it",
    "__lambda__": "a Python lambda function, which would be run to load it",
    "TFOpLambda": "a TFOpLambda layer, which calls TensorFlow functions named in the file",
    "TorchModuleWrapper": "a TorchModuleWrapper, which unpickles a PyTorch module (running code)",
}
_HOW_TO_SAVE = "Save the model with `model.save('model.keras')` using only built-in Keras layers."


class ModelFileError(CnnLabError):
    """A user's model file is refused: unsafe, not a Keras file, too large, or not an image classifier."""


def _kind_of(head: bytes) -> str:
    """What non-Keras bytes look like, for the message."""
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "an HDF5 (.h5) file, the legacy Keras format"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive without a Keras model inside"
    if head.startswith(b"\x80"):
        return "a Python pickle (which runs code when loaded)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    return "a text file"


def _walk(node: Any, path: str = "model") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every serialised object (a dict with a `class_name`) in a Keras config, with where it is."""
    if isinstance(node, dict):
        if "class_name" in node:
            name = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
            yield (f"{path} {name!r}" if name else path), node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if key not in ("config", "layers") else path)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, path)


def check_config(config: dict[str, Any]) -> None:
    """Refuse an architecture that would run code on loading: a Lambda layer or a class from outside Keras."""
    for where, item in _walk(config):
        class_name = str(item.get("class_name"))
        if class_name in UNSAFE_CLASSES:
            layer = item.get("config", {}).get("name") if isinstance(item.get("config"), dict) else None
            named = f" (layer {layer!r})" if layer else ""
            raise ModelFileError(
                f"The model contains {UNSAFE_CLASSES[class_name]}{named}. CNN Lab loads model files in Keras "
                "safe mode and never runs code from a file, so it refuses this one. Replace the Lambda "
                f"with built-in layers (for example Rescaling, Activation or Reshape). {_HOW_TO_SAVE}"
            )
        module = item.get("module")
        registered = item.get("registered_name")
        custom = isinstance(registered, str) and registered not in (class_name, "") and ">" in registered
        if (isinstance(module, str) and module != "builtins" and not module.startswith("keras")) or custom:
            raise ModelFileError(
                f"The model uses the custom class {class_name!r} from {module or registered!r} ({where}). "
                "Loading it would import and run that code, so CNN Lab refuses it. "
                f"{_HOW_TO_SAVE}"
            )


def read_config(path: Path) -> dict[str, Any]:
    """The architecture of a `.keras` file after checking its size and layout; ModelFileError if it is not one."""
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"The model file is {size / 1e6:.1f} MB; the limit is {MAX_MODEL_BYTES / 1e6:.0f} MB. "
            "Use a smaller model (fewer filters or Dense units)."
        )
    if size == 0:
        raise ModelFileError(f"The model file is empty (0 bytes). {_HOW_TO_SAVE}")
    with path.open("rb") as handle:
        head = handle.read(512)
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"The file is not a Keras model (.keras): it looks like {_kind_of(head)} ({size:,} bytes). "
            f"CNN Lab only loads the .keras format, which it can check before loading. {_HOW_TO_SAVE}"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            missing = [name for name in REQUIRED_MEMBERS if name not in members]
            if missing:
                raise ModelFileError(
                    f"The zip file is not a Keras model: it has no {' and no '.join(missing)} "
                    f"(it holds {', '.join(sorted(members)[:5]) or 'nothing'}). {_HOW_TO_SAVE}"
                )
            unpacked = sum(info.file_size for info in members.values())
            if unpacked > MAX_UNPACKED_BYTES:
                raise ModelFileError(
                    f"The model unpacks to {unpacked / 1e6:.0f} MB; the limit is {MAX_UNPACKED_BYTES / 1e6:.0f} MB."
                )
            config = json.loads(archive.read("config.json").decode("utf-8"))
    except (zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError, OSError) as error:
        raise ModelFileError(f"The Keras file is damaged ({error}). {_HOW_TO_SAVE}") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"The Keras file's config.json is not an object; got {type(config).__name__}.")
    return config


def _check_classifier(model: keras.Model) -> None:
    inputs, outputs = tuple(model.input_shape), tuple(model.output_shape)
    if isinstance(model.input_shape, list) or len(inputs) != 4 or inputs[-1] not in (1, 3):
        raise ModelFileError(
            f"The model takes input of shape {model.input_shape}; CNN Lab needs one image input "
            "(batch, height, width, 1 or 3 channels)."
        )
    if len(outputs) != 2 or not inputs[1] or not inputs[2]:
        raise ModelFileError(
            f"The model outputs shape {model.output_shape} for input {model.input_shape}; CNN Lab needs a "
            "classifier with a fixed image size and one probability per class."
        )


def load_model_file(path: Path | str) -> keras.Model:
    """Check a user's `.keras` file and load it in Keras safe mode (not compiled); ModelFileError if refused."""
    import keras  # Here: writing or reading what a file was trained on needs no TensorFlow.

    path = Path(path)
    check_config(read_config(path))
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        # Keras raises plain exceptions for a file it cannot rebuild; the file is the user's, so say so.
        unsafe = "safe_mode" in str(error) or "arbitrary code" in str(error)
        reason = "it would run code from the file" if unsafe else f"Keras could not rebuild it ({error})"
        raise ModelFileError(f"The model file was refused: {reason}. {_HOW_TO_SAVE}") from None
    if not isinstance(model, keras.Model):
        raise ModelFileError(f"The file holds a {type(model).__name__}, not a Keras model. {_HOW_TO_SAVE}")
    _check_classifier(model)
    return model


def load_model_bytes(data: bytes) -> keras.Model:
    """Like `load_model_file`, for the bytes of an upload (written to a private temporary file first)."""
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"The model file is {len(data) / 1e6:.1f} MB; the limit is {MAX_MODEL_BYTES / 1e6:.0f} MB. "
            "Use a smaller model (fewer filters or Dense units)."
        )
    handle, name = tempfile.mkstemp(suffix=".keras", prefix="cnnlab_upload_")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        return load_model_file(name)
    finally:
        Path(name).unlink(missing_ok=True)


# What a model was trained on travels inside the `.keras` file CNN Lab hands out, so an uploaded
# file is prepared like its training images (and gets its out-of-distribution calibration) without
# asking the user. Keras ignores these extra zip members when it loads the file.
TRAINING_DATA_MEMBER = "cnnlab/training_data.json"
CALIBRATION_MEMBER = "cnnlab/calibration.npz"
_MAX_MEMBER_BYTES = 4 * 1024 * 1024


_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # So the same model and data always give the same bytes.


def with_training_data(model: bytes, info: DatasetInfo, calibration: Calibration | None = None) -> bytes:
    """The `.keras` file's bytes with what it was trained on (and its calibration) added, replacing
    any such description the file already carries; the same inputs give the same bytes."""
    described = {
        "dataset": info.name,
        "title": info.title,
        "image_shape": list(info.image_shape),
        "class_names": list(info.class_names),
        "digit_like": info.digit_like,
    }
    added = {TRAINING_DATA_MEMBER: json.dumps(described).encode("utf-8")}
    if calibration is not None:
        added[CALIBRATION_MEMBER] = calibration.to_bytes()
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(model)) as original,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for member in original.infolist():
            if member.filename not in (TRAINING_DATA_MEMBER, CALIBRATION_MEMBER):
                archive.writestr(member, original.read(member))
        for name, content in added.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=_FIXED_TIME), content, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def training_data(model: bytes) -> tuple[DatasetInfo | None, Calibration | None]:
    """What a CNN Lab model file says it was trained on, and its calibration; (None, None) for a
    file from elsewhere, whose preprocessing the user chooses."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            names = {item.filename: item for item in archive.infolist()}
            member = names.get(TRAINING_DATA_MEMBER)
            if member is None or member.file_size > _MAX_MEMBER_BYTES:
                return None, None
            described = json.loads(archive.read(member).decode("utf-8"))
            stored = names.get(CALIBRATION_MEMBER)
            calibration = None
            if stored is not None and stored.file_size <= _MAX_MEMBER_BYTES:
                calibration = Calibration.from_bytes(archive.read(stored))
        info = DatasetInfo(
            name=str(described["dataset"]),
            title=str(described["title"]),
            description="The data the model file says it was trained on.",
            image_shape=tuple(int(size) for size in described["image_shape"]),  # type: ignore[arg-type]  # checked length below
            class_names=tuple(str(name) for name in described["class_names"]),
            size=0,
            source="model file",
            licence="",
            available=True,
            unavailable_reason=None,
            digit_like=bool(described["digit_like"]),
        )
    except (zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None, None
    except CnnLabError:
        return None, None
    if len(info.image_shape) != 3:
        return None, None
    return info, calibration

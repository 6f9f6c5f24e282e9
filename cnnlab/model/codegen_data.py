"""The data half of the exported training script: `load_images()` for each kind of dataset.

The script runs with Keras, numpy and Pillow alone (no CNN Lab), so each dataset's loader is
written out as plain code that reads the images exactly as the app does:

- the digits from scikit-learn, and the Keras standard sets from `keras.datasets`;
- the generated shapes, drawn by `cnnlab.data.generated`'s own drawing code from the same seed;
- the user's own folder (or .zip) of class subfolders, scanned in the app's order (sorted paths,
  hidden files and wrapper folders as `cnnlab.data.folders` treats them), decoded as
  `cnnlab.data.decode` does (the same formats and limits, EXIF orientation, transparency on white)
  and resized with the same filter. The same files in the same order give the same labels, so
  the app's seeded split (`cnnlab.data.splits`, copied by `codegen`) picks the same test images.

Every `load_images` returns (float32 images in [0, 1], int64 labels, names): an image's name is its
file path inside the folder for the user's images, its number in the dataset otherwise.
"""

from __future__ import annotations

import inspect
import textwrap

from cnnlab.data import decode, folders, generated, standard_sets
from cnnlab.specs import DataSettings

KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
_LUMA = "np.array([0.299, 0.587, 0.114], dtype=np.float32)"

_DIGITS_SOURCE = '''
def load_images():
    """The 1,797 digits of scikit-learn scaled to [0, 1], their labels, and their numbers."""
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., np.newaxis]
    labels = digits.target.astype("int64")
    return images, labels, list(range(len(labels)))
'''

_KERAS_SOURCE = '''
def load_images():
    """The {name} images (train and test pooled, as CNN Lab does) scaled to [0, 1], their labels,
    and their numbers."""
    (train_images, train_labels), (test_images, test_labels) = keras.datasets.{name}.load_data({arguments})
    images = np.concatenate([train_images, test_images]).astype("float32") / 255.0
    labels = np.concatenate([train_labels, test_labels]).reshape(-1).astype("int64")
    if images.ndim == 3:
        images = images[..., np.newaxis]
    return images, labels, list(range(len(labels)))
'''

_SHAPES_SOURCE = '''
def load_images():
    """The shapes CNN Lab draws from the seed: the same options give the same pixels."""
    rng = np.random.default_rng(SHAPES_SEED)
    classes, count = SHAPES_OPTIONS["classes"], SHAPES_OPTIONS["count_per_class"]
    channels = 3 if SHAPES_COLOUR else 1
    images = np.empty((count * len(classes), SHAPES_SIZE, SHAPES_SIZE, channels), dtype=np.float32)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), count)
    for class_index, name in enumerate(classes):
        for item in range(count):
            images[class_index * count + item] = _draw_one(name, SHAPES_SIZE, rng, SHAPES_OPTIONS, SHAPES_COLOUR)
    if SHAPES_OPTIONS["noise"] > 0:
        images += rng.normal(0.0, SHAPES_OPTIONS["noise"], size=images.shape).astype(np.float32)
        np.clip(images, 0.0, 1.0, out=images)
    return images, labels, list(range(len(labels)))
'''

_FOLDER_SOURCE = '''
def image_files(folder):
    """The image files of a folder with one subfolder per class, as CNN Lab reads it: (path inside
    the folder, class index) sorted by path, and the class names (the subfolders, sorted)."""
    paths = []
    for directory, _, names in os.walk(folder):  # Symbolic links are not followed.
        for name in names:
            path = Path(directory, name)
            if not path.is_symlink():
                paths.append(PurePosixPath(path.relative_to(folder).as_posix()))
    kept = sorted(path for path in paths if not any(part.startswith(".") or part in IGNORED_NAMES for part in path.parts))
    root = PurePosixPath(".")
    # Descend through wrapper folders ("pets/cats/1.jpg" when the zip holds the folder itself).
    while kept and any(len(path.parts) >= 3 for path in kept) and len({path.parts[0] for path in kept}) == 1:
        root = root / kept[0].parts[0]
        kept = [PurePosixPath(*path.parts[1:]) for path in kept]
    class_names = sorted({path.parts[0] for path in kept if len(path.parts) >= 2})
    files = [
        (root / path, class_names.index(path.parts[0]))
        for path in kept
        if len(path.parts) >= 2 and path.suffix.lower() in IMAGE_EXTENSIONS
    ]
    return files, class_names


def read_image(path, size, channels):
    """One image file as uint8 pixels (size, size, channels), or None when it cannot be read safely."""
    try:
        data = path.read_bytes()
        if not data or len(data) > MAXIMUM_FILE_BYTES:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            if image.width * image.height > MAXIMUM_PIXELS:
                return None
            if image.format in ("JPEG", "MPO"):
                image.draft("RGB" if image.mode != "L" else "L", (size, size))
            image.seek(0)  # The first frame of an animation.
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombError, Warning):
        return None
    with contextlib.suppress(SyntaxError, ValueError, TypeError, KeyError, OSError):
        image = ImageOps.exif_transpose(image) or image  # A malformed EXIF block keeps the picture as it is.
    image = normalise_mode(image).convert("L" if channels == 1 else "RGB")
    array = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    return array[:, :, np.newaxis] if channels == 1 else array


def read_folder(folder, size, channels):
    """Every readable image of the folder: uint8 pixels, int64 labels, names, class names."""
    files, class_names = image_files(folder)
    images, labels, names = [], [], []
    for relative, class_index in files:
        pixels = read_image(Path(folder, relative), size, channels)
        if pixels is None:
            print("Skipped (not a readable image):", relative)
        else:
            images.append(pixels)
            labels.append(class_index)
            names.append(str(relative))
    if len(class_names) < 2:
        raise SystemExit(f"{folder} needs at least 2 class subfolders of images, e.g. cats/1.jpg and dogs/1.jpg.")
    images = np.stack(images) if images else np.empty((0, size, size, channels), np.uint8)
    return images, np.asarray(labels, dtype=np.int64), names, class_names


def load_images(data_path=DATA_PATH):
    """The images of `data_path` (a folder, or a .zip, with one subfolder per class) scaled to [0, 1],
    their labels, and their paths inside it."""
    if Path(data_path).is_file():
        with tempfile.TemporaryDirectory() as folder:
            with zipfile.ZipFile(data_path) as archive:
                archive.extractall(folder)
            images, labels, names, class_names = read_folder(folder, IMAGE_SIZE, CHANNELS)
    else:
        images, labels, names, class_names = read_folder(data_path, IMAGE_SIZE, CHANNELS)
    print("Classes:", ", ".join(class_names))
    return images.astype("float32") / 255.0, labels, names
'''

_OWN_IMAGES_IMPORTS = (
    "import contextlib",
    "import io",
    "import os",
    "import tempfile",
    "import warnings",
    "import zipfile",
    "from pathlib import Path, PurePosixPath",
)


def is_own_images(data: DataSettings) -> bool:
    """True when the data is the user's own folder or .zip (not a dataset the registry names)."""
    return data.dataset not in ("digits", "shapes", *KERAS_DATASETS)


def imports(data: DataSettings) -> tuple[list[str], list[str]]:
    """The import lines `load_images_source(data)` needs besides argparse, json, keras and numpy:
    (the standard library's, other packages')."""
    if data.dataset == "digits":
        return [], ["from sklearn.datasets import load_digits"]
    if data.dataset == "shapes":
        return ["import math", "from collections.abc import Mapping", "from typing import Any"], [
            "from PIL import Image, ImageDraw"
        ]
    if is_own_images(data):
        return list(_OWN_IMAGES_IMPORTS), ["from PIL import Image, ImageOps"]
    return [], []


def _python_text(value: object) -> str:
    """`value` as a Python literal (None, True and False as Python spells them, never JSON's null)."""
    return repr(value)


def _shapes_source(data: DataSettings) -> str:
    options = generated.check_options(data.options)
    drawing = "\n\n\n".join(
        inspect.getsource(function).strip() for function in (generated._polygon, generated._draw_one)
    )
    constants = "\n".join(
        [
            f"SHAPES_OPTIONS = {_python_text(options)}",
            f"SHAPES_SIZE = {data.image_size or generated.DEFAULT_IMAGE_SIZE}",
            f"SHAPES_COLOUR = {data.color_mode == 'rgb'}",
            f"SHAPES_SEED = {data.seed}",
            f"_SUPERSAMPLING = {generated._SUPERSAMPLING}",
        ]
    )
    return f"{constants}\n\n\n{drawing}\n\n\n{_SHAPES_SOURCE.strip()}"


def _own_images_source(data: DataSettings, input_shape: tuple[int, int, int]) -> str:
    height, _, channels = input_shape
    modes = "\n\n\n".join(
        inspect.getsource(function).strip()
        for function in (decode._to_eight_bit, decode._flatten_on_white, decode.normalise_mode)
    )
    constants = "\n".join(
        [
            f"DATA_PATH = {_python_text(data.dataset)}  # The folder (or .zip) CNN Lab read; --data gives another.",
            f"IMAGE_SIZE = {height}",
            f"CHANNELS = {channels}",
            f"IMAGE_EXTENSIONS = {_python_text(decode.SUPPORTED_EXTENSIONS)}",
            f"IMAGE_FORMATS = {_python_text(list(decode.SUPPORTED_FORMATS))}",
            f"IGNORED_NAMES = {_python_text(sorted(folders._IGNORED_NAMES))}",
            f"MAXIMUM_FILE_BYTES = {folders.MAXIMUM_FILE_BYTES:_}",
            "MAXIMUM_PIXELS = 40_000_000",
        ]
    )
    return f"{constants}\n\n\n{modes}\n\n\n{_FOLDER_SOURCE.strip()}"


def load_images_source(data: DataSettings, input_shape: tuple[int, int, int]) -> str:
    """`load_images()` (and the constants and helpers it needs) for `data`, as script source."""
    if data.dataset == "digits":
        return _DIGITS_SOURCE.strip()
    if data.dataset == "shapes":
        return _shapes_source(data)
    if data.dataset in KERAS_DATASETS:
        options = standard_sets.check_options(data.dataset, data.options)
        arguments = f"label_mode={options['label_mode']!r}" if "label_mode" in options else ""
        return _KERAS_SOURCE.format(name=data.dataset, arguments=arguments).strip()
    return _own_images_source(data, input_shape)


def fit_source(input_shape: tuple[int, int, int]) -> str:
    """Lines (inside `load_data`) that fit the images to the model's input size and colour mode."""
    height, width, channels = input_shape
    to_channels = (
        f"images = (images[..., :3] @ {_LUMA})[..., np.newaxis]"
        if channels == 1
        else f"images = np.repeat(images, {channels}, axis=-1)"
    )
    return textwrap.dedent(
        f"""\
        if images.shape[1:3] != ({height}, {width}):
            images = np.asarray(keras.ops.image.resize(images, ({height}, {width})))
        if images.shape[-1] != {channels}:
            {to_channels}
        """
    )

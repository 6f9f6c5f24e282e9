"""A practitioner's own dataset, made at test time: renders of five letters ("glyph_A" to "glyph_E"),
64x64 RGB, each letter in a random colour on a random plain background, at a random size, place and
slant, with a little sensor noise; written as a zip of class folders, as a user uploads one.

Issue 23 tried CNN Lab on such a set (5 classes of 64x64 RGB renders); the out-of-distribution test
(tests/test_flag_any_dataset.py) and the "not learning" replay (benchmarks/not_learning.py) use it.
Deterministic for a seed; numpy and Pillow only.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LETTERS = "ABCDE"
SIZE = 64


def class_names(classes: int = len(LETTERS)) -> list[str]:
    """The class folders: glyph_A, glyph_B, ..."""
    return [f"glyph_{letter}" for letter in LETTERS[:classes]]


def render(letter: str, random: np.random.Generator, size: int = SIZE) -> Image.Image:
    """One render of `letter`: coloured ink on a plain coloured background, `size` pixels square."""
    background = random.integers(0, 256, 3)
    ink = (background + random.integers(90, 166, 3)) % 256  # Always far from the background.
    height = int(random.integers(size * 3 // 8, size * 3 // 4))
    font = ImageFont.load_default(height)
    layer = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(layer).text((size, size), letter, fill=255, font=font, anchor="mm")
    layer = layer.rotate(float(random.uniform(-20, 20)), resample=Image.Resampling.BICUBIC)
    box = layer.getbbox() or (0, 0, size, size)
    glyph = layer.crop(box)
    glyph.thumbnail((size - 4, size - 4))
    mask = Image.new("L", (size, size), 0)
    left = int(random.integers(2, size - glyph.width - 1))
    top = int(random.integers(2, size - glyph.height - 1))
    mask.paste(glyph, (left, top))
    share = np.asarray(mask, np.float32)[..., None] / 255.0
    pixels = (1 - share) * background + share * ink + random.normal(0.0, 4.0, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def write_zip(path: Path, per_class: int, seed: int = 0, classes: int = len(LETTERS)) -> Path:
    """A zip of `classes` folders (glyph_A, ...) of `per_class` PNG renders each; returns `path`."""
    random = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for letter, name in zip(LETTERS[:classes], class_names(classes), strict=True):
            for index in range(per_class):
                buffer = io.BytesIO()
                render(letter, random).save(buffer, format="PNG")
                archive.writestr(f"glyphs/{name}/{index:04d}.png", buffer.getvalue())
    return path

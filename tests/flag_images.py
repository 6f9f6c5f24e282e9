"""Images to measure the "does not look like a digit" flag on: genuine digits in real-world styles
(none made the way scikit-learn's 8x8 training digits were) and non-digits.

Genuine digits, by style:
- `font on paper`, `font on dark`: a digit in a TrueType font (any installed one, or Pillow's own),
  at a random size, stroke width, offset and slight rotation, dark on light or light on dark;
- `screenshot`: a font digit inside a larger white window with a plot frame, ticks and tick labels;
- `JPEG`: a font digit on paper, shrunk and saved as a low-quality JPEG;
- `photographed`: a font digit on tinted paper under uneven light, blurred, with sensor noise;
- `hand-drawn`: pen strokes along a random trajectory around each digit's usual path, on paper;
- `canvas`: the same pen strokes, white on black with a thick pen, as the drawing canvas makes them;
- `28x28 PNG`: a font or hand-drawn digit saved small, light on dark, as MNIST-like files are;
- `tight crop`: a digit cropped to its ink by hand, touching or almost touching the edges;
- `enlarged`: a digit 8-16 pixels high (a dataset's, a thumbnail's) enlarged 4-10 times with smoothing.

Non-digits, by kind: `noise` (uniform, Gaussian, salt and pepper, blurred clouds, coloured), `photo`
(crops of scikit-learn's two sample photographs at random places and scales), `texture` (stripes,
checks, blotches), `gradient` (linear and radial), `letter` (letters from the fonts) and `shape`
(filled and outlined circles, boxes, triangles, stars).

`digit_set` and `non_digit_set` are deterministic for a seed and a list of fonts; the benchmark
(benchmarks/flag_rates.py) uses every installed font, the fast test only Pillow's own.
"""

from __future__ import annotations

import io
import math
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tests.data.make_images import STROKES, _smooth

# Fonts whose "digits" are not digits (symbols, dingbats) or that draw them as pictures.
_NOT_DIGIT_FONTS = ("symbol", "dingbat", "d050000l", "standardsymbols", "math")


@dataclass(frozen=True)
class Sample:
    """One image of the set: its style (or kind), its label (a digit, or None) and its pixels."""

    style: str
    label: int | None
    image: Image.Image


def installed_fonts() -> list[str]:
    """The TrueType and OpenType font files `fc-list` knows, less symbol fonts; sorted."""
    try:
        listed = subprocess.run(
            ["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, check=True
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        listed = [str(path) for path in Path("/usr/share/fonts").rglob("*") if path.is_file()]
    files = sorted(
        {
            line
            for line in listed
            if line.lower().endswith((".ttf", ".otf"))
            and not any(word in Path(line).name.lower() for word in _NOT_DIGIT_FONTS)
        }
    )
    return [file for file in files if _draws_digits(file)]


def _draws_digits(file: str) -> bool:
    """Whether the font has ten different digit glyphs (not one missing-glyph box for all)."""
    try:
        font = ImageFont.truetype(file, 40)
    except OSError:
        return False
    masks = {bytes(font.getmask(str(digit))) for digit in range(10)}
    return len(masks) == 10


@cache
def _font(file: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size) if file is None else ImageFont.truetype(file, size)


def _glyph(text: str, font_file: str | None, size: int, stroke: int, angle: float) -> Image.Image:
    """White `text` on black, tightly cropped, rotated by `angle` degrees."""
    font = _font(font_file, size)
    canvas = Image.new("L", (size * 3, size * 3), 0)
    ImageDraw.Draw(canvas).text(
        (size, size // 2), text, fill=255, font=font, stroke_width=stroke, stroke_fill=255
    )
    canvas = canvas.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
    box = canvas.getbbox()
    return canvas.crop(box) if box else canvas


def _pen_glyph(digit: int, random: np.random.Generator, height: int, width: int) -> Image.Image:
    """A digit written along a random trajectory: each stroke's points moved a little, slanted,
    stretched, smoothed like a hand's; white on black, tightly cropped."""
    slant = random.uniform(-0.1, 0.3)
    aspect = random.uniform(0.5, 0.85)
    wobble = random.uniform(0.01, 0.05)
    canvas = Image.new("L", (int(height * 2), int(height * 1.6)), 0)
    draw = ImageDraw.Draw(canvas)
    for stroke in STROKES[digit]:
        moved = [(x + wobble * random.normal(), y + wobble * random.normal()) for x, y in stroke]
        points = [
            (height * 0.3 + (x * aspect + slant * (1 - y)) * height, height * 0.3 + y * height)
            for x, y in _smooth(moved, rounds=3)
        ]
        draw.line(points, fill=255, width=width, joint="curve")
    box = canvas.getbbox()
    return canvas.crop(box) if box else canvas


def _on_background(
    ink: Image.Image, random: np.random.Generator, ink_level: float, paper_level: float, margin: float
) -> np.ndarray:
    """`ink` (white on black) placed at a random offset on a page `margin` times its size; grey in [0, 1]."""
    width, height = ink.size
    page_width = int(width * margin) + 4
    page_height = int(height * margin) + 4
    left = int(random.integers(2, page_width - width - 1))
    top = int(random.integers(2, page_height - height - 1))
    alpha = np.zeros((page_height, page_width), np.float32)
    alpha[top : top + height, left : left + width] = np.asarray(ink, np.float32) / 255
    return paper_level + (ink_level - paper_level) * alpha


def _to_image(grey: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8))


def _font_ink(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    font = fonts[int(random.integers(len(fonts)))]
    size = int(random.integers(28, 120))
    stroke = int(random.integers(0, max(1, size // 14) + 1))
    return _glyph(str(digit), font, size, stroke, float(random.uniform(-12, 12)))


def _font_paper(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    ink = _font_ink(digit, fonts, random)
    grey = _on_background(
        ink, random, random.uniform(0, 0.3), random.uniform(0.85, 1), random.uniform(1.2, 2.5)
    )
    return _to_image(grey)


def _font_dark(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    ink = _font_ink(digit, fonts, random)
    grey = _on_background(
        ink, random, random.uniform(0.75, 1), random.uniform(0, 0.2), random.uniform(1.2, 2.5)
    )
    return _to_image(grey)


def _screenshot(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    ink = _font_ink(digit, fonts, random)
    width, height = 480, 360
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 50, 20, width - 20, height - 40
    draw.rectangle([left, top, right, bottom], outline="black", width=1)
    for index, x in enumerate(range(left, right + 1, 41)):
        draw.line([(x, bottom), (x, bottom + 6)], fill="black")
        draw.text((x - 8, bottom + 10), f"{index / 10:.1f}", fill="black")
    for index, y in enumerate(range(top, bottom + 1, 30)):
        draw.line([(left - 6, y), (left, y)], fill="black")
        draw.text((14, y - 5), f"{1 - index / 10:.1f}", fill="black")
    scale = random.uniform(120, 240) / max(ink.size)
    ink = ink.resize((max(1, int(ink.width * scale)), max(1, int(ink.height * scale))))
    colour = ("#1f77b4", "black", "#d62728", "#2ca02c")[int(random.integers(4))]
    x = int(random.integers(left + 10, max(left + 11, right - ink.width - 10)))
    y = int(random.integers(top + 10, max(top + 11, bottom - ink.height - 10)))
    image.paste(colour, (x, y), ink)
    return image


def _jpeg(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    image = _font_paper(digit, fonts, random)
    side = int(random.integers(24, 90))
    image = image.resize((side, max(8, int(side * image.height / image.width))), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=int(random.integers(10, 45)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _photographed(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    ink = _font_ink(digit, fonts, random) if random.random() < 0.5 else _pen(digit, random, 90)
    grey = _on_background(ink, random, 0.0, 1.0, random.uniform(1.4, 2.4))
    rows, columns = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]]
    rows, columns = rows / grey.shape[0], columns / grey.shape[1]
    light = 0.55 + random.uniform(0, 0.35) * columns + random.uniform(-0.2, 0.2) * rows
    inked = Image.fromarray((grey * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(random.uniform(0.5, 2.5))
    )
    paper = light * (0.2 + 0.8 * np.asarray(inked, np.float32) / 255)
    paper = paper + random.normal(0, random.uniform(0.01, 0.05), paper.shape)
    tint = np.array([1.0, random.uniform(0.9, 1.0), random.uniform(0.75, 1.0)])
    colour = np.clip(paper[:, :, np.newaxis] * tint, 0, 1)
    return Image.fromarray((colour * 255).astype(np.uint8), "RGB")


def _pen(digit: int, random: np.random.Generator, height: int) -> Image.Image:
    return _pen_glyph(digit, random, height, int(random.integers(max(2, height // 25), max(3, height // 8))))


def _hand_drawn(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    ink = _pen(digit, random, int(random.integers(40, 200)))
    grey = _on_background(
        ink, random, random.uniform(0, 0.35), random.uniform(0.85, 1), random.uniform(1.2, 2.2)
    )
    return _to_image(grey)


def _canvas(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    side = 280
    ink = _pen_glyph(digit, random, int(random.integers(120, 220)), int(random.integers(16, 30)))
    ink.thumbnail((side - 10, side - 10))
    page = Image.new("L", (side, side), 0)
    page.paste(
        ink, (int(random.integers(0, side - ink.width + 1)), int(random.integers(0, side - ink.height + 1)))
    )
    return page


def _small_png(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    ink = _font_ink(digit, fonts, random) if random.random() < 0.5 else _pen(digit, random, 80)
    ink.thumbnail((20, 20), Image.Resampling.LANCZOS)
    page = Image.new("L", (28, 28), 0)
    page.paste(ink, ((28 - ink.width) // 2 + int(random.integers(-2, 3)), (28 - ink.height) // 2))
    return page


def _tight_crop(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    """A digit cropped to its ink by hand: dark on light, with a margin of 0-2 pixels."""
    ink = _font_ink(digit, fonts, random) if random.random() < 0.5 else _pen(digit, random, 100)
    margin = int(random.integers(0, 3))
    page = Image.new("L", (ink.width + 2 * margin, ink.height + 2 * margin), 0)
    page.paste(ink, (margin, margin))
    return Image.fromarray(255 - np.asarray(page))


def _enlarged(digit: int, fonts: Sequence[str | None], random: np.random.Generator) -> Image.Image:
    """A small, low-resolution digit (8-16 pixels high, as a dataset's or a thumbnail's) enlarged by a
    viewer 4-10 times with smoothing: blurred strokes, sometimes touching the edge."""
    ink = _font_ink(digit, fonts, random) if random.random() < 0.5 else _pen(digit, random, 100)
    height = int(random.integers(8, 17))
    ink = ink.resize((max(2, round(ink.width * height / ink.height)), height), Image.Resampling.BOX)
    margin = int(random.integers(0, 3))
    page = Image.new("L", (ink.width + 2 * margin, ink.height + 2 * margin), 0)
    page.paste(ink, (margin, margin))
    factor = int(random.integers(4, 11))
    resample = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)[int(random.integers(2))]
    enlarged = page.resize((page.width * factor, page.height * factor), resample)
    return enlarged if random.random() < 0.5 else Image.fromarray(255 - np.asarray(enlarged))


DIGIT_STYLES: dict[str, Callable[[int, Sequence[str | None], np.random.Generator], Image.Image]] = {
    "font on paper": _font_paper,
    "font on dark": _font_dark,
    "screenshot": _screenshot,
    "JPEG": _jpeg,
    "photographed": _photographed,
    "hand-drawn": _hand_drawn,
    "canvas": _canvas,
    "28x28 PNG": _small_png,
    "tight crop": _tight_crop,
    "enlarged": _enlarged,
}


def digit_set(per_style: int, fonts: Sequence[str | None], seed: int = 0) -> list[Sample]:
    """`per_style` digits of each style (the labels cycle through 0-9), in fonts drawn from `fonts`
    (None is Pillow's own font)."""
    random = np.random.default_rng(seed)
    return [
        Sample(style, index % 10, make(index % 10, fonts, random))
        for style, make in DIGIT_STYLES.items()
        for index in range(per_style)
    ]


def _noise(random: np.random.Generator, index: int) -> Image.Image:
    side = int(random.integers(28, 220))
    kind = index % 5
    if kind == 0:
        grey = random.uniform(0, 1, (side, side))
    elif kind == 1:
        grey = random.normal(0.5, random.uniform(0.1, 0.3), (side, side))
    elif kind == 2:
        grey = np.where(random.random((side, side)) < random.uniform(0.05, 0.3), 1.0, 0.0)
        grey = grey if random.random() < 0.5 else 1 - grey
    elif kind == 3:
        grey = random.uniform(0, 1, (side, side))
        blurred = Image.fromarray((grey * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(side / 20))
        grey = np.asarray(blurred, np.float32) / 255
        grey = (grey - grey.min()) / max(1e-6, float(grey.max() - grey.min()))
    else:
        return Image.fromarray(random.integers(0, 256, (side, side, 3)).astype(np.uint8), "RGB")
    return _to_image(grey)


@cache
def _photos() -> tuple[Image.Image, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(Image.fromarray(image) for image in load_sample_images().images)


def _photo(random: np.random.Generator, index: int) -> Image.Image:
    photo = _photos()[index % 2]
    side = int(random.integers(60, min(photo.size)))
    left = int(random.integers(0, photo.width - side + 1))
    top = int(random.integers(0, photo.height - side + 1))
    return photo.crop((left, top, left + side, top + side)).resize((int(random.integers(32, 200)),) * 2)


def _texture(random: np.random.Generator, index: int) -> Image.Image:
    side = int(random.integers(48, 200))
    rows, columns = np.mgrid[0:side, 0:side] / side
    kind = index % 3
    if kind == 0:
        angle = random.uniform(0, math.pi)
        frequency = random.uniform(3, 15)
        grey = 0.5 + 0.5 * np.sin(
            2 * math.pi * frequency * (columns * math.cos(angle) + rows * math.sin(angle))
        )
    elif kind == 1:
        cells = int(random.integers(3, 12))
        grey = ((rows * cells).astype(int) + (columns * cells).astype(int)) % 2 * 1.0
    else:
        blobs = Image.fromarray(random.integers(0, 256, (side, side)).astype(np.uint8))
        grey = np.asarray(blobs.filter(ImageFilter.GaussianBlur(side / 40)), np.float32) / 255
        grey = (grey > np.median(grey)) * 1.0
    return _to_image(grey)


def _gradient(random: np.random.Generator, index: int) -> Image.Image:
    side = int(random.integers(28, 200))
    rows, columns = np.mgrid[0:side, 0:side] / side
    if index % 2 == 0:
        angle = random.uniform(0, 2 * math.pi)
        grey = columns * math.cos(angle) + rows * math.sin(angle)
    else:
        grey = np.hypot(rows - random.uniform(0, 1), columns - random.uniform(0, 1))
    grey = (grey - grey.min()) / max(1e-6, float(grey.max() - grey.min()))
    return _to_image(grey)


# Letters that are not written like a digit (no O, o, I, l, S, Z, B, G, b, g, q, z, T).
LETTERS = "ACDEFHJKLMNPRUVWXYacdefhkmnprtuvwxy"


def _letter(random: np.random.Generator, index: int, fonts: Sequence[str | None]) -> Image.Image:
    letter = LETTERS[index % len(LETTERS)]
    font = fonts[int(random.integers(len(fonts)))]
    ink = _glyph(letter, font, int(random.integers(28, 110)), 0, float(random.uniform(-10, 10)))
    return _to_image(_on_background(ink, random, 0.05, 0.95, random.uniform(1.3, 2.2)))


def _shape(random: np.random.Generator, index: int) -> Image.Image:
    side = int(random.integers(60, 200))
    image = Image.new("L", (side, side), 245)
    draw = ImageDraw.Draw(image)
    x0, y0 = (int(value) for value in random.integers(0, side // 4, size=2))
    x1, y1 = (int(value) for value in random.integers(3 * side // 4, side, size=2))
    fill = 20 if index % 2 == 0 else None
    outline = 20
    width = max(2, side // 20)
    kind = index % 4
    if kind == 0:
        draw.ellipse([x0, y0, x1, y1], fill=fill, outline=outline, width=width)
    elif kind == 1:
        draw.rectangle([x0, y0, x1, y1], fill=fill, outline=outline, width=width)
    elif kind == 2:
        draw.polygon([(x0, y1), ((x0 + x1) / 2, y0), (x1, y1)], fill=fill, outline=outline, width=width)
    else:
        centre, radius = ((x0 + x1) / 2, (y0 + y1) / 2), (x1 - x0) / 2
        points = [
            (
                centre[0]
                + radius * (1 if corner % 2 == 0 else 0.4) * math.cos(math.pi * corner / 5 - math.pi / 2),
                centre[1]
                + radius * (1 if corner % 2 == 0 else 0.4) * math.sin(math.pi * corner / 5 - math.pi / 2),
            )
            for corner in range(10)
        ]
        draw.polygon(points, fill=fill, outline=outline, width=width)
    return image


NON_DIGIT_KINDS = ("noise", "photo", "texture", "gradient", "letter", "shape")


def non_digit_set(per_kind: int, fonts: Sequence[str | None], seed: int = 1) -> list[Sample]:
    """`per_kind` images of each non-digit kind (letters in fonts drawn from `fonts`)."""
    random = np.random.default_rng(seed)
    makers: dict[str, Callable[[np.random.Generator, int], Image.Image]] = {
        "noise": _noise,
        "photo": _photo,
        "texture": _texture,
        "gradient": _gradient,
        "letter": lambda generator, index: _letter(generator, index, fonts),
        "shape": _shape,
    }
    return [
        Sample(kind, None, makers[kind](random, index))
        for kind in NON_DIGIT_KINDS
        for index in range(per_kind)
    ]

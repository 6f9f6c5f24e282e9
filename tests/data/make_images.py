"""Make the real-world-style test images in tests/data/real_world/ (run once; the PNGs are committed).

Digits are drawn as pen strokes with PIL the way people make them, in five styles: a drawing
canvas (white ink on black, thick pen), a pen on paper (dark, thin, slanted, off-centre, touching
the border, tiny in a large page), a photograph of paper (uneven lighting, noise, blur), a
screenshot of a plotting window (a frame with ticks and tick labels around the digit) and
transparent PNGs (white ink and black ink on a transparent background). Non-digits are crops of
scikit-learn's two sample photos and random filled shapes. The file name starts with the label:
`digit_7_canvas.png`, `nondigit_china_1.png`.

    python tests/data/make_images.py
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FOLDER = Path(__file__).resolve().parent / "real_world"
Point = tuple[float, float]


def _ellipse(
    centre: Point, radii: Point, start: float = 0.0, stop: float = 360.0, steps: int = 40
) -> list[Point]:
    return [
        (
            centre[0] + radii[0] * math.cos(math.radians(angle)),
            centre[1] + radii[1] * math.sin(math.radians(angle)),
        )
        for angle in np.linspace(start, stop, steps)
    ]


# Each digit as pen strokes in a unit box (x to the right, y down), the way it is usually written.
STROKES: dict[int, list[list[Point]]] = {
    0: [_ellipse((0.5, 0.5), (0.36, 0.5))],
    1: [[(0.3, 0.2), (0.55, 0.0), (0.55, 1.0)]],
    2: [[(0.1, 0.25), (0.3, 0.02), (0.7, 0.02), (0.9, 0.25), (0.85, 0.45), (0.1, 1.0), (0.95, 1.0)]],
    3: [
        [
            (0.1, 0.1),
            (0.5, 0.0),
            (0.85, 0.15),
            (0.8, 0.4),
            (0.45, 0.5),
            (0.85, 0.6),
            (0.9, 0.85),
            (0.5, 1.0),
            (0.1, 0.9),
        ]
    ],
    4: [[(0.7, 1.0), (0.7, 0.0), (0.05, 0.65), (0.95, 0.65)]],
    5: [
        [
            (0.85, 0.0),
            (0.2, 0.0),
            (0.15, 0.45),
            (0.55, 0.38),
            (0.85, 0.55),
            (0.85, 0.85),
            (0.5, 1.0),
            (0.1, 0.9),
        ]
    ],
    6: [
        [
            (0.75, 0.0),
            (0.35, 0.25),
            (0.15, 0.65),
            (0.25, 0.95),
            (0.6, 1.0),
            (0.85, 0.8),
            (0.75, 0.55),
            (0.4, 0.5),
            (0.18, 0.65),
        ]
    ],
    7: [[(0.05, 0.0), (0.95, 0.0), (0.4, 1.0)]],
    8: [_ellipse((0.5, 0.24), (0.3, 0.24)), _ellipse((0.5, 0.72), (0.38, 0.28))],
    9: [_ellipse((0.5, 0.3), (0.35, 0.3)), [(0.85, 0.3), (0.8, 1.0)]],
}


def _smooth(points: list[Point], rounds: int = 2) -> list[Point]:
    """Chaikin's corner cutting: a hand's rounded corners."""
    for _ in range(rounds):
        smoothed = [points[0]]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            smoothed += [
                (0.75 * x0 + 0.25 * x1, 0.75 * y0 + 0.25 * y1),
                (0.25 * x0 + 0.75 * x1, 0.25 * y0 + 0.75 * y1),
            ]
        points = [*smoothed, points[-1]]
    return points


def draw_digit(
    image: Image.Image,
    digit: int,
    box: tuple[float, float, float],  # left, top, height in pixels (the width is 0.65 of the height)
    width: int,
    fill: object,
    slant: float = 0.0,  # fraction of the height the top leans right
    wobble: float = 0.0,
    seed: int = 0,
) -> None:
    """Draw `digit` as pen strokes into `image`."""
    random = np.random.default_rng(seed)
    left, top, height = box
    draw = ImageDraw.Draw(image)
    for stroke in STROKES[digit]:
        points = []
        for x, y in _smooth(stroke):
            x += wobble * random.normal()
            y += wobble * random.normal()
            points.append((left + (x * 0.65 + slant * (1 - y)) * height, top + y * height))
        draw.line(points, fill=fill, width=width, joint="curve")  # type: ignore[arg-type]  # PIL accepts colours


def _canvas(digit: int, seed: int) -> Image.Image:
    image = Image.new("RGB", (280, 280), "black")
    draw_digit(image, digit, (70 + 10 * (seed % 3), 40, 200), 18, "white", slant=0.1 * (seed % 2), seed=seed)
    return image


def _paper(digit: int, seed: int) -> Image.Image:
    image = Image.new("L", (300, 240), 250)
    draw_digit(
        image,
        digit,
        (30 + 40 * seed, 20, 150 + 20 * seed),
        3 + 2 * seed,
        20,
        slant=0.25,
        wobble=0.01,
        seed=seed,
    )
    return image


def _photo(digit: int, seed: int) -> Image.Image:
    size = 220
    rows, columns = np.mgrid[0:size, 0:size] / size
    lighting = 0.55 + 0.35 * columns + 0.1 * rows  # a lamp on the right
    ink = Image.new("L", (size, size), 0)
    draw_digit(ink, digit, (60, 30, 160), 12, 255, slant=0.15, wobble=0.02, seed=seed)
    ink_array = np.asarray(ink.filter(ImageFilter.GaussianBlur(2)), np.float64) / 255
    paper = lighting * (1 - 0.75 * ink_array)
    noise = np.random.default_rng(seed).normal(0, 0.04, paper.shape)
    return Image.fromarray((np.clip(paper + noise, 0, 1) * 255).astype(np.uint8)).convert("RGB")


def _screenshot(digit: int, seed: int) -> Image.Image:
    image = Image.new("RGB", (480, 360), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([50, 20, 460, 320], outline="black", width=1)
    for index, x in enumerate(range(50, 461, 41)):
        draw.line([(x, 320), (x, 326)], fill="black")
        if index % 2 == 0:
            draw.text((x - 8, 330), f"{index / 10:.1f}", fill="black")
    for index, y in enumerate(range(20, 321, 30)):
        draw.line([(44, y), (50, y)], fill="black")
        if index % 2 == 0:
            draw.text((14, y - 5), f"{1 - index / 10:.1f}", fill="black")
    colour = ("#1f77b4", "black", "#d62728")[seed % 3]
    draw_digit(image, digit, (180 + 20 * seed, 60, 210), 6, colour, slant=0.05, seed=seed)
    return image


def _transparent(digit: int, seed: int) -> Image.Image:
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ink = (255, 255, 255, 255) if seed % 2 == 0 else (0, 0, 0, 255)
    draw_digit(image, digit, (50, 25, 150), 10, ink, seed=seed)
    return image


def _touching(digit: int, seed: int) -> Image.Image:
    image = Image.new("L", (120, 150), 255)
    draw_digit(image, digit, (10, 0, 150), 9, 0, seed=seed)
    return image


def _tiny(digit: int, seed: int) -> Image.Image:
    size = 640
    rows, columns = np.mgrid[0:size, 0:size] / size
    page = Image.fromarray((255 * (0.8 + 0.15 * rows - 0.05 * columns)).astype(np.uint8))
    draw_digit(page, digit, (400, 120, 60), 4, 30, slant=0.1, seed=seed)
    return page


STYLES: dict[str, Callable[[int, int], Image.Image]] = {
    "canvas": _canvas,
    "paper": _paper,
    "photo": _photo,
    "screenshot": _screenshot,
    "transparent": _transparent,
    "touching": _touching,
    "tiny": _tiny,
}
# (digit, style, seed): every digit at least twice, every style at least twice.
DIGITS = [
    (0, "canvas", 0),
    (1, "canvas", 1),
    (2, "canvas", 2),
    (3, "paper", 0),
    (4, "paper", 1),
    (5, "photo", 0),
    (6, "photo", 1),
    (7, "screenshot", 0),
    (8, "screenshot", 1),
    (9, "screenshot", 2),
    (0, "transparent", 0),
    (1, "transparent", 1),
    (2, "transparent", 2),
    (3, "transparent", 3),
    (4, "touching", 0),
    (5, "touching", 1),
    (6, "tiny", 0),
    (7, "tiny", 1),
    (8, "canvas", 3),
    (9, "photo", 2),
    (3, "canvas", 4),
    (7, "paper", 2),
    (2, "photo", 3),
    (6, "canvas", 5),
    (9, "paper", 0),
]


def non_digits() -> dict[str, Image.Image]:
    """Crops of the two sample photos and random filled shapes."""
    from sklearn.datasets import load_sample_images

    china, flower = (Image.fromarray(image) for image in load_sample_images().images)
    images = {
        "china_1": china.crop((100, 50, 300, 250)),
        "china_2": china.crop((380, 200, 580, 400)),
        "flower_1": flower.crop((150, 100, 350, 300)),
        "flower_2": flower.crop((300, 200, 500, 400)),
    }
    random = np.random.default_rng(0)
    for index in range(3):
        image = Image.new("RGB", (200, 200), "white")
        draw = ImageDraw.Draw(image)
        for _ in range(4 + 2 * index):
            x, y = random.integers(0, 160, size=2)
            w, h = random.integers(30, 90, size=2)
            colour = tuple(int(value) for value in random.integers(0, 200, size=3))
            (draw.ellipse if random.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], fill=colour)
        images[f"shapes_{index + 1}"] = image
    return images


def main() -> None:
    FOLDER.mkdir(exist_ok=True)
    for digit, style, seed in DIGITS:
        STYLES[style](digit, seed).save(FOLDER / f"digit_{digit}_{style}_{seed}.png", optimize=True)
    for name, image in non_digits().items():
        image.convert("RGB").resize((100, 100)).save(FOLDER / f"nondigit_{name}.png", optimize=True)


if __name__ == "__main__":
    main()

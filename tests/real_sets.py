"""Genuine digits and photographs CNN Lab did not make, from tests/data/real_sets.npz (sources and
licences in tests/data/README.md; built by tests/data/make_real_sets.py), as `flag_images.Sample`s.

Each set has two halves: half 0 to choose the out-of-distribution rule on, half 1 held out to report
it on. Genuine digits, by style (the handwriting is MNIST's; only the presentation is ours):
- `MNIST 28x28`: the file as MNIST has it, light ink on black;
- `MNIST on paper`: the same digit dark on white, scaled up 4 times (bilinear), as a scan would be;
- `MNIST enlarged`: light on black, scaled up 8 times (bicubic), the digit filling its 20x20 box.

Non-digits, by kind: `photo crop` (a square crop of 32-128 pixels at a random place, shown at 48-224
pixels) and `photo` (a whole photograph, 128 pixels square), from ten public-domain photographs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from tests.flag_images import Sample

FILE = Path(__file__).parent / "data" / "real_sets.npz"
HALVES = {"tuning": 0, "held out": 1}


@cache
def _arrays() -> dict[str, np.ndarray]:
    with np.load(FILE, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def mnist_digits(half: int) -> list[Sample]:
    """The MNIST digits of `half` (0 tuning, 1 held out) in each style, 200 per style."""
    arrays = _arrays()
    chosen = arrays["mnist_half"] == half
    samples = []
    for pixels, label in zip(arrays["mnist_images"][chosen], arrays["mnist_labels"][chosen], strict=True):
        digit = Image.fromarray(pixels)
        samples.append(Sample("MNIST 28x28", int(label), digit))
        paper = Image.fromarray(255 - pixels).resize((112, 112), Image.Resampling.BILINEAR)
        samples.append(Sample("MNIST on paper", int(label), paper))
        samples.append(
            Sample("MNIST enlarged", int(label), digit.resize((224, 224), Image.Resampling.BICUBIC))
        )
    return samples


def photographs(half: int, crops_per_photo: int = 12, seed: int = 0) -> list[Sample]:
    """The photographs of `half` (0 tuning, 1 held out): each whole, and `crops_per_photo` crops."""
    arrays = _arrays()
    random = np.random.default_rng(seed + 100 * half)
    samples = []
    for pixels in arrays["photo_images"][arrays["photo_half"] == half]:
        photo = Image.fromarray(pixels)
        samples.append(Sample("photo", None, photo))
        for _ in range(crops_per_photo):
            side = int(random.integers(32, photo.width + 1))
            left = int(random.integers(0, photo.width - side + 1))
            top = int(random.integers(0, photo.height - side + 1))
            shown = int(random.integers(48, 225))
            crop = photo.crop((left, top, left + side, top + side)).resize((shown, shown))
            samples.append(Sample("photo crop", None, crop))
    return samples

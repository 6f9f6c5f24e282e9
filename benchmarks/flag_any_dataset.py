"""How often the out-of-distribution flag fires on datasets other than the digits: noise, blank images
and new genuine images, for the generated shapes (32x32 grey) and a user's zip of five classes of
64x64 RGB letter renders (tests/glyph_renders.py). Each dataset is calibrated on its own training and
test images as a run's is; the rule reads the images alone, so no model is trained.

Usage: python benchmarks/flag_any_dataset.py [--count 200] [--per-class 100]

Goal (issue 23): every noise and blank image flagged, few new genuine images flagged. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnlab import specs  # noqa: E402  # After the path is set.
from cnnlab.data import datasets  # noqa: E402  # Same.
from tests import flag_datasets, glyph_renders  # noqa: E402  # Same.


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="images of each kind to judge")
    parser.add_argument("--per-class", type=int, default=100, help="images per class to calibrate on")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cnnlab-flag-") as folder:
        archive = glyph_renders.write_zip(Path(folder) / "glyphs.zip", arguments.per_class, seed=0)
        glyphs = datasets.load(specs.DataSettings(dataset=str(archive)))
    shapes = datasets.load(
        specs.DataSettings(dataset="shapes", options={"count_per_class": arguments.per_class})
    )
    cases = (
        ("letter renders (zip, 64x64 RGB)", glyphs, 64, "RGB", flag_datasets.new_renders),
        ("shapes (32x32 grey)", shapes, 32, "L", flag_datasets.new_shapes),
    )
    print(f"{'dataset':34s} {'noise flagged':>14s} {'blank flagged':>14s} {'new genuine flagged':>20s}")
    for name, data, size, mode, genuine in cases:
        info, measured = flag_datasets.calibrated(data)
        noise, blanks = flag_datasets.noise_and_blanks(size, mode, arguments.count)
        rates = [
            flag_datasets.flagged_share(images, info, measured)
            for images in (noise, blanks, genuine(arguments.count))
        ]
        print(f"{name:34s} {rates[0]:14.1%} {rates[1]:14.1%} {rates[2]:20.1%}")
        print(
            f"    limits: contrast below {measured.contrast_threshold:.3f}, roughness above "
            f"{measured.roughness_threshold:.3f}, PCA residual above {measured.residual_threshold:.2f} "
            f"(blocks of {measured.pool} pixels); {len(data.x_train)} training and {len(data.x_test)} test images"
        )


if __name__ == "__main__":
    main()

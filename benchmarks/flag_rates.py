"""How often Predict's "does not look like a digit" flag fires: on genuine digits of real-world styles
(tests/flag_images.py: fonts, screenshots, JPEGs, photographs, pen strokes; none made the way the
8x8 training digits were), on real MNIST handwriting and public-domain photographs we did not make
(tests/real_sets.py, one half for tuning and one held out), and on non-digits (noise, photo crops,
textures, gradients, letters, shapes), with the default digits model trained the standard way.

Usage: python benchmarks/flag_rates.py [--per-style 60] [--per-kind 40] [--set-seed 0] [--half 1]
    [--sets generated real] [--given HOME RUN_ID]

Without --given it trains `python -m cnnlab train digits_default --dataset digits --seed 0` in a
temporary home at the lowest priority (as benchmarks/real_world.py does). The goal (issue 20): at most
1 genuine digit in 10 flagged, every noise image and photo crop flagged. Also prints how often the
model is unsure (a separate, milder note) and how often it is right. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from real_world import train  # noqa: E402  # The sibling benchmark, found beside this script.

from cnnlab.data import datasets  # noqa: E402  # After the path is set.
from cnnlab.store.run_store import Store  # noqa: E402  # Same.
from cnnlab.trained import checkpoints, prediction  # noqa: E402  # Same.
from tests import flag_images, real_sets  # noqa: E402  # Same.

STRICT = ("noise", "photo", "photo crop")  # the non-digits that must all be flagged


def _rate(count: int, total: int) -> str:
    return f"{count:3d}/{total:<3d} {count / max(1, total):6.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=60, help="genuine digits per style")
    parser.add_argument("--per-kind", type=int, default=40, help="non-digits per kind")
    parser.add_argument("--set-seed", type=int, default=0, help="seed of the image set")
    parser.add_argument("--half", type=int, choices=(0, 1), default=1, help="real sets' half (0 tuning)")
    parser.add_argument("--sets", nargs="+", choices=("generated", "real"), default=["generated", "real"])
    parser.add_argument("--given", nargs=2, metavar=("HOME", "RUN_ID"), default=None)
    arguments = parser.parse_args()
    home, run_id = (Path(arguments.given[0]), arguments.given[1]) if arguments.given else train(0)
    store = Store(home)
    checkpoint = checkpoints.find(store, run_id, "best")
    model = checkpoints.load(checkpoint)
    data = datasets.load(store.get_run(run_id).data())
    info = dataclasses.replace(data.info, class_names=tuple(data.class_names))
    calibration = prediction.for_run(checkpoint, model, data)

    fonts = flag_images.installed_fonts() if "generated" in arguments.sets else []
    samples: list[flag_images.Sample] = []
    if "generated" in arguments.sets:
        samples += flag_images.digit_set(arguments.per_style, fonts, seed=arguments.set_seed)
        samples += flag_images.non_digit_set(arguments.per_kind, fonts, seed=arguments.set_seed + 1)
    if "real" in arguments.sets:
        samples += real_sets.mnist_digits(arguments.half) + real_sets.photographs(arguments.half)
    results = prediction.predict(model, [sample.image for sample in samples], info, calibration)

    by_style: dict[str, list[tuple[flag_images.Sample, prediction.Prediction]]] = defaultdict(list)
    for sample, result in zip(samples, results, strict=True):
        by_style[sample.style].append((sample, result))
    print(
        f"Model: run {run_id} in {home} (best checkpoint); unsure below {calibration.confidence_threshold:.2f}"
    )
    print(
        f"Sets: {' and '.join(arguments.sets)}; generated: {len(fonts)} installed fonts, set seed "
        f"{arguments.set_seed}; real: half {arguments.half} ({'held out' if arguments.half else 'tuning'})"
    )
    print(f"\n{'style':16s} {'flagged as unlike a digit':>26s} {'unsure':>17s} {'right':>17s}")
    totals: Counter[str] = Counter()
    for style, pairs in by_style.items():
        flagged = sum(result.out_of_distribution is not None for _, result in pairs)
        unsure = sum(result.unsure is not None for _, result in pairs)
        right = sum(
            sample.label is not None and result.class_index == sample.label for sample, result in pairs
        )
        genuine = pairs[0][0].label is not None
        group = "digits" if genuine else ("strict" if style in STRICT else "other")
        totals[f"{group} flagged"] += flagged
        totals[f"{group} count"] += len(pairs)
        totals[f"{group} unsure"] += unsure
        shown_right = _rate(right, len(pairs)) if genuine else ""
        print(
            f"{style:16s} {_rate(flagged, len(pairs)):>26s} {_rate(unsure, len(pairs)):>17s} {shown_right:>17s}"
        )
        reasons = Counter(reason for _, result in pairs for reason in result.reasons)
        for reason, count in reasons.most_common(3 if genuine else 2):
            print(f"    {count:3d}x {reason}")
    print()
    for group, label in (
        ("digits", "genuine digits flagged (goal <= 10%)"),
        ("strict", "noise, photos and photo crops flagged (goal 100%)"),
        ("other", "other non-digits flagged (textures, gradients, letters, shapes)"),
    ):
        print(f"{label:64s} {_rate(totals[f'{group} flagged'], totals[f'{group} count'])}")
    print(
        f"{'genuine digits the model is unsure of (a separate note)':64s} "
        f"{_rate(totals['digits unsure'], totals['digits count'])}"
    )


if __name__ == "__main__":
    main()

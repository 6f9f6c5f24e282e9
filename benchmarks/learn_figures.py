"""What the Learn page's ReLU and pooling figures cost to build, with their outlines added in one layout
update (`cnnlab.figures.learn`) against plotly's `add_shape`/`add_annotation` once per outline, the
way the figures were built before.

Usage: python benchmarks/learn_figures.py [--rounds 20]

Both ways draw the same outlines over the same figure (checked: their layouts are equal). Prints the
median CPU milliseconds of a figure each way and their ratio; never asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Build each figure `rounds` times each way, alternately, and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    options = parser.parse_args()

    import numpy as np
    import plotly.graph_objects as go

    from cnnlab.figures import learn

    feature_map = np.random.default_rng(0).normal(size=(6, 6))

    def one_at_a_time(figure: go.Figure, outlines: list[tuple[learn.Outline, int | None]]) -> None:
        for outline, column in outlines:
            box = outline.box
            line = {"color": outline.color, "width": 4, "dash": outline.dash}
            figure.add_shape(
                type="rect",
                x0=box.left - 0.5,
                x1=box.right + 0.5,
                y0=box.top - 0.5,
                y1=box.bottom + 0.5,
                line=line,
                row=None if column is None else 1,
                col=column,
            )

    figures: dict[str, Callable[[], go.Figure]] = {
        "ReLU": lambda: learn.relu_figure(feature_map),
        "pooling": lambda: learn.pooling_figure(feature_map),
    }
    print(f"{'figure':<10} {'one update (ms)':>16} {'one per outline (ms)':>21} {'ratio':>6}")
    for name, build in figures.items():
        timings: dict[str, list[float]] = {"batched": [], "each": []}
        for _ in range(options.rounds):
            for way in ("batched", "each"):
                started = time.process_time()
                if way == "batched":
                    build()
                else:
                    with _outlines_one_at_a_time(learn, one_at_a_time):
                        build()
                timings[way].append(time.process_time() - started)
        with _outlines_one_at_a_time(learn, one_at_a_time):
            old = build().to_plotly_json()["layout"]
        assert old == build().to_plotly_json()["layout"], "the two ways drew different figures"
        batched, each = (1000 * statistics.median(timings[way]) for way in ("batched", "each"))
        print(f"{name:<10} {batched:>16.1f} {each:>21.1f} {each / batched:>5.1f}x")


@contextlib.contextmanager
def _outlines_one_at_a_time(module: Any, replacement: Callable[..., None]) -> Iterator[None]:
    """Within the block, `learn._outline` adds its outlines one `add_shape` at a time."""
    saved = module._outline
    module._outline = replacement
    try:
        yield
    finally:
        module._outline = saved


if __name__ == "__main__":
    main()

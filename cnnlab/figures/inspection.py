"""Figures of what a model sees and where it looks: heat-map overlays, top-k bars, preprocessing steps.

A heat map on a small input (the 8x8 digits) would be a mosaic of a few dozen squares: `overlay`
enlarges such an input for display, its pixels kept square (what the model sees) and the heat
map interpolated smoothly over them, and draws the outline of the input's ink on top, so the
hot areas can be read against the shape of the digit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import sample_colorscale

from cnnlab.plain_text import as_chart_text

HEAT_COLOURSCALE = "Turbo"
DISPLAY_SIDE = 224  # larger images are shrunk to this many pixels a side before they are sent
SMALL_SIDE = 64  # overlays on images up to this many pixels a side are enlarged for display
ENLARGED_SIDE = 192  # ... to about this many pixels a side
OUTLINE_COLOUR = (1.0, 1.0, 1.0)
TITLE_SIZE = 15  # pixels, for the titles of image galleries
FRAME_COLOUR = "#9e9e9e"  # the thin frame round each image, so a white image shows its edges


def _lookup_table(colourscale: str = HEAT_COLOURSCALE) -> np.ndarray:
    """256 RGB colours in [0, 1] along a plotly colour scale."""
    colours = sample_colorscale(colourscale, list(np.linspace(0.0, 1.0, 256)), colortype="tuple")
    return np.array(colours, dtype=np.float32).reshape(256, 3).clip(0.0, 1.0)


_TABLE = _lookup_table()


def _resized(array: np.ndarray, height: int, width: int, resampling: Image.Resampling) -> np.ndarray:
    """A float (height, width, channels) image resized plane by plane with PIL, clipped to [0, 1]."""
    if array.shape[:2] == (height, width):
        return array
    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(array[:, :, channel], np.float32)).resize(
                (width, height), resampling
            )
        )
        for channel in range(array.shape[2])
    ]
    resized: np.ndarray = np.clip(np.stack(planes, axis=-1), 0.0, 1.0).astype(np.float32)
    return resized


def _rgb(image: np.ndarray) -> np.ndarray:
    pixels = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[:, :, :3]


def for_display(image: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """An RGB image shrunk so its longer side is at most `side` pixels (plotly enlarges small ones itself)."""
    pixels = _rgb(image)
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if longest <= side:
        return pixels
    scale = side / longest
    return _resized(
        pixels, max(1, round(height * scale)), max(1, round(width * scale)), Image.Resampling.BILINEAR
    )


def enlargement(height: int, width: int) -> int:
    """The whole factor an overlay of an image this size is enlarged by for display (1: not enlarged)."""
    longest = max(height, width)
    return max(1, ENLARGED_SIDE // longest) if longest <= SMALL_SIDE else 1


def ink_outline(image: np.ndarray, factor: int = 1) -> np.ndarray:
    """The outline of the image's ink at `factor` times its size: a boolean (height, width) mask.

    The image is enlarged smoothly and cut at the level halfway between its darkest and lightest
    pixel; the outline is the pixels on the bright side that touch the dark side (four neighbours),
    so it traces dark ink on light paper and light ink on dark alike. A flat image has no outline.
    """
    grey = _rgb(image).mean(axis=2)
    height, width = grey.shape
    smooth = _resized(grey[:, :, np.newaxis], height * factor, width * factor, Image.Resampling.BICUBIC)[
        :, :, 0
    ]
    low, high = float(smooth.min()), float(smooth.max())
    if high - low < 0.1:
        return np.zeros(smooth.shape, dtype=bool)
    bright = np.pad(smooth > (low + high) / 2, 1, mode="edge")
    centre = bright[1:-1, 1:-1]
    surrounded = bright[:-2, 1:-1] & bright[2:, 1:-1] & bright[1:-1, :-2] & bright[1:-1, 2:]
    outline: np.ndarray = centre & ~surrounded
    return outline


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float = 0.65, outline: bool = True) -> np.ndarray:
    """A heat map in [0, 1] coloured and blended over a grey version of the image: (height, width, 3) in [0, 1].

    A small image (`SMALL_SIDE` or less) comes back enlarged (`enlargement`): its pixels square,
    the heat map interpolated smoothly, and with `outline` the outline of its ink drawn on top.
    """
    heat = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    base = _rgb(image)
    factor = enlargement(*base.shape[:2])
    height, width = base.shape[0] * factor, base.shape[1] * factor
    if factor > 1:
        base = np.repeat(np.repeat(base, factor, axis=0), factor, axis=1)
    if heat.shape != (height, width):
        heat = _resized(heat[:, :, np.newaxis], height, width, Image.Resampling.BICUBIC)[:, :, 0]
    grey = base.mean(axis=2, keepdims=True).repeat(3, axis=2)
    colours = _TABLE[np.round(heat * 255).astype(np.int64)]
    weight = opacity * np.sqrt(heat[:, :, np.newaxis])  # Cold areas show the image itself, in grey.
    blended: np.ndarray = np.clip((1.0 - weight) * grey + weight * colours, 0.0, 1.0)
    if outline and factor > 1:
        blended[ink_outline(image, factor)] = OUTLINE_COLOUR
    return blended


def _as_bytes(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 image from a float image in [0, 1] (grey shown in grey)."""
    return (_rgb(image) * 255).round().astype(np.uint8)


def image_panels(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    columns: int = 6,
    size: int = 130,
    title_size: int = TITLE_SIZE,
    title_lines: int = 1,
) -> go.Figure:
    """Images in a grid of `columns`, each `size` pixels high with its title (of `title_lines`
    lines, broken with "<br>") above it, and a thin grey frame round it, so a white image on a white
    page still shows its edges.

    The figure is written out in one go (axes, domains and titles as plain layout), which is much
    quicker than building it cell by cell with `make_subplots`.
    """
    count = len(images)
    columns = max(1, min(columns, count))
    rows = max(1, -(-count // columns))
    band = title_lines * (title_size + 4) + 6  # The titles' strip above each row, in pixels.
    height = rows * (size + band)
    gap = 0.01
    layout: dict[str, object] = {
        "height": height,
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "showlegend": False,
        "annotations": [],
        "shapes": [],
    }
    traces = []
    for position, image in enumerate(images):
        row, column = divmod(position, columns)
        suffix = "" if position == 0 else str(position + 1)
        left, right = column / columns + gap / 2, (column + 1) / columns - gap / 2
        top = 1 - (row * (size + band) + band) / height
        bottom = 1 - (row + 1) * (size + band) / height
        layout[f"xaxis{suffix}"] = {"domain": [left, right], "visible": False, "anchor": f"y{suffix}"}
        layout[f"yaxis{suffix}"] = {"domain": [bottom, top], "visible": False, "anchor": f"x{suffix}"}
        pixels = _as_bytes(image)
        traces.append(go.Image(z=pixels, xaxis=f"x{suffix}", yaxis=f"y{suffix}", hoverinfo="skip"))
        layout["shapes"].append(  # type: ignore[attr-defined]  # The list made above.
            {
                "type": "rect",
                "xref": f"x{suffix}",
                "yref": f"y{suffix}",
                "x0": -0.5,
                "y0": -0.5,
                "x1": pixels.shape[1] - 0.5,
                "y1": pixels.shape[0] - 0.5,
                "line": {"color": FRAME_COLOUR, "width": 1},
                "layer": "above",
            }
        )
        layout["annotations"].append(  # type: ignore[attr-defined]  # The list made above.
            {
                "text": str(titles[position]) if position < len(titles) else "",
                "x": (left + right) / 2,
                "y": top,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": title_size},
            }
        )
    return go.Figure(data=traces, layout=layout)


def gallery_pictures(
    images: Sequence[np.ndarray], heats: Sequence[np.ndarray] | None = None, side: int = 260
) -> list[np.ndarray]:
    """The pictures of an image gallery as RGB bytes, each with its heat map over it if given: small
    inputs enlarged with square pixels (`enlargement`), large ones shrunk to `side` pixels a side.

    A page shows them as plain images with captions (`st.image`), which a browser draws far faster
    than one chart per picture.
    """
    pictures = []
    for position, image in enumerate(images):
        shown = _rgb(image) if heats is None else overlay(image, heats[position])
        factor = enlargement(*shown.shape[:2])
        if factor > 1:
            shown = np.repeat(np.repeat(shown, factor, axis=0), factor, axis=1)
        pictures.append(_as_bytes(for_display(shown, side=side)))
    return pictures


def overlay_grid(
    images: Sequence[np.ndarray],
    heats: Sequence[np.ndarray],
    titles: Sequence[str],
    columns: int = 6,
    size: int = 130,
    opacity: float = 0.65,
) -> go.Figure:
    """Each image with its heat map blended over it, in a grid with titles."""
    blended = [
        for_display(overlay(image, heat, opacity), side=size * 2)
        for image, heat in zip(images, heats, strict=True)
    ]
    return image_panels(blended, titles, columns=columns, size=size)


def explanation(image: np.ndarray, grad_cam: np.ndarray, saliency: np.ndarray, size: int = 230) -> go.Figure:
    """Three panels: the input as the model sees it, its Grad-CAM overlay, and its saliency overlay."""
    panels = [
        for_display(image),
        for_display(overlay(image, grad_cam)),
        for_display(overlay(image, saliency, 0.8)),
    ]
    titles = ["what the model sees", "Grad-CAM: where it looked", "saliency: pixels that matter"]
    return image_panels(panels, titles, columns=3, size=size)


def top_k(probabilities: np.ndarray, class_names: Sequence[str], k: int = 5) -> go.Figure:
    """Horizontal bars of the `k` most probable classes, the most probable on top."""
    values = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    names = [as_chart_text(name) for name in class_names]
    if values.size == 1:  # One sigmoid unit: the probability of class 1.
        values = np.array([1.0 - values[0], values[0]])
    order = np.argsort(-values, kind="stable")[: max(1, min(k, len(values)))]
    labels = [names[index] if index < len(names) else str(index) for index in order]
    colours = ["#1f77b4"] + ["#9ecae1"] * (len(order) - 1)
    figure = go.Figure(
        go.Bar(
            x=values[order],
            y=labels,
            orientation="h",
            marker_color=colours,
            text=[f"{value:.1%}" for value in values[order]],
            textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    figure.update_layout(
        height=60 + 32 * len(order),
        margin={"l": 0, "r": 10, "t": 30, "b": 0},
        title=f"Top {len(order)} classes",
        xaxis={"range": [0, 1], "tickformat": ".0%"},
        yaxis={"autorange": "reversed", "type": "category"},
    )
    return figure


def preprocessing_steps(steps: Sequence[tuple[str, np.ndarray]], size: int = 150) -> go.Figure:
    """The preprocessing steps in order, each image titled with its step and its size."""
    titles = [
        f"{index + 1}. {name}<br>({image.shape[1]}×{image.shape[0]})"
        for index, (name, image) in enumerate(steps)
    ]
    shown = [for_display(image, side=size * 2) for _, image in steps]
    return image_panels(shown, titles, columns=max(1, len(steps)), size=size, title_size=12, title_lines=2)

"""The one safe way from untrusted bytes to an image.

`decode_image` caps bytes and pixels before decoding (decompression bombs), applies the EXIF
orientation, flattens palettes, transparency (on white), CMYK and 16-bit images to 8-bit RGB or
L, and keeps the first frame of an animation. When the bytes are not a supported image, the
error says what they look like (SVG, PDF, zip, HTML, TIFF, text) and what to upload instead.
`prepare` turns a decoded image into what a model expects.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
from PIL import Image, ImageOps

from cnnlab.errors import ImageError

__all__ = ["SUPPORTED_EXTENSIONS", "SUPPORTED_FORMATS", "decode_image", "normalise_mode"]

SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")  # JPEG also opens camera MPO files.
SUPPORTED_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
_WHAT_TO_DO = "Upload a PNG, JPEG, GIF, BMP or WebP image."


def _registered_formats() -> list[str]:
    """The supported formats this Pillow build can open (WebP needs libwebp)."""
    Image.init()
    return [name for name in SUPPORTED_FORMATS if name in Image.OPEN]


def _megabytes(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB"


def _sniff(data: bytes) -> str:
    """A guess at what non-image bytes are, for the error message."""
    head = data[:512].lstrip()
    lowered = head.lower()
    if lowered.startswith(b"<?xml") or b"<svg" in lowered:
        return "an SVG or XML document"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive"
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if head.startswith(b"II*\x00") or head.startswith(b"MM\x00*"):
        return "a TIFF image (not supported)"
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    return "text"


_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}


def _claimed_format(data: bytes) -> str | None:
    """The supported format the first bytes announce, if any."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for signature, name in _SIGNATURES.items() if data.startswith(signature)), None)


def _is_svg(data: bytes) -> bool:
    lowered = data[:2048].lstrip().lower()
    return (
        lowered.startswith(b"<svg")
        or (lowered.startswith(b"<?xml") and b"<svg" in lowered)
        or (lowered.startswith(b"<!doctype svg"))
    )


def _to_eight_bit(image: Image.Image) -> Image.Image:
    """Scale a 16- or 32-bit single-channel image ("I", "I;16", "F") to 8-bit "L"."""
    values = np.asarray(image).astype(np.float64)
    maximum = float(values.max()) if values.size else 0.0
    minimum = float(values.min()) if values.size else 0.0
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    elif image.mode == "I" and minimum >= 0 and maximum <= 65535:
        scaled = values / 257.0 if maximum > 255 else values
    elif image.mode == "F" and minimum >= 0 and maximum <= 1.0:
        scaled = values * 255.0
    else:
        span = maximum - minimum
        scaled = (values - minimum) * (255.0 / span) if span > 0 else np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def _flatten_on_white(image: Image.Image) -> Image.Image:
    """Composite an image with an alpha channel onto a white background."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def normalise_mode(image: Image.Image) -> Image.Image:
    """Convert any decoded mode to "L" (grey) or "RGB", compositing transparency on white."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _to_eight_bit(image)
    if mode == "LA" or mode == "La":
        return _flatten_on_white(image).convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return _flatten_on_white(image) if has_alpha else image.convert("RGB")
    if mode in ("RGBA", "RGBa"):
        return _flatten_on_white(image)
    return image.convert("RGB")


def _too_many_pixels(error: Exception, max_pixels: int) -> ImageError:
    """The message for Pillow's own decompression-bomb guard, with the pixel count it found."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    count = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
    return ImageError(
        f"The image has {count}, too many to decode safely (the limit is {max_pixels:,} pixels). "
        "Resize it to a few thousand pixels per side and upload it again."
    )


def decode_image(
    data: bytes,
    *,
    max_bytes: int = 20_000_000,
    max_pixels: int = 40_000_000,
    draft_size: tuple[int, int] | None = None,
    keep_alpha: bool = False,
) -> Image.Image:
    """Decode untrusted image bytes into a safe 8-bit "RGB" or "L" image.

    The byte count is checked before decoding and the pixel count from the header before any
    pixel is decoded. The EXIF orientation is applied, transparency is composited on white,
    palettes, CMYK and 16-bit images are converted, and only the first frame of an animation is
    kept. `draft_size` lets JPEG decoding skip detail beyond that size (faster for photos that
    are shrunk afterwards). With `keep_alpha`, an image with transparency is returned as "RGBA" so
    the caller can tell its ink from its background (`cnnlab.data.prepare`). Raises ImageError with a message saying what was wrong and what to do.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageError(
            f"Expected the image file's bytes; got {type(data).__name__}. Read the file in binary mode."
        )
    data = bytes(data)
    if not data:
        raise ImageError(f"The file is empty (0 bytes). {_WHAT_TO_DO}")
    if len(data) > max_bytes:
        raise ImageError(
            f"The image file is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}. "
            "Resize or compress it, then upload it again."
        )
    if _is_svg(data):
        raise ImageError(
            "SVG vector images are not supported; got an SVG document. "
            "Export it as PNG (any drawing program or browser can) and upload that."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=_registered_formats())
        except Image.UnidentifiedImageError:
            claimed = _claimed_format(data)
            if claimed is not None:
                raise ImageError(
                    f"The {claimed} data is corrupt or truncated ({len(data):,} bytes, header unreadable). "
                    "Open it in an image viewer, save it again, and upload the new file."
                ) from None
            raise ImageError(
                f"The file is not a supported image; it looks like {_sniff(data)} "
                f"({len(data):,} bytes). {_WHAT_TO_DO}"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _too_many_pixels(error, max_pixels) from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageError(f"The image header is corrupt ({error}). {_WHAT_TO_DO}") from None
        width, height = image.size
        if width <= 0 or height <= 0 or width * height > max_pixels:
            raise ImageError(
                f"The image is {width:,} x {height:,} pixels ({width * height:,} in all); "
                f"the limit is {max_pixels:,} pixels. Resize it and upload it again."
            )
        try:
            if draft_size is not None and image.format in ("JPEG", "MPO"):
                image.draft("RGB" if image.mode != "L" else "L", draft_size)
            image.seek(0)  # The first frame of an animation.
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _too_many_pixels(error, max_pixels) from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
            raise ImageError(
                f"The {image.format or 'image'} data is corrupt or truncated ({error}). "
                "Open it in an image viewer, save it again, and upload the new file."
            ) from None
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception:
        # A malformed EXIF block must not reject the picture itself.
        oriented = image
    upright = oriented if oriented is not None else image
    if keep_alpha and (upright.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in upright.info):
        return upright.convert("RGBA")
    result = normalise_mode(upright)
    return result.copy()

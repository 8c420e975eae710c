"""Reading image files from strangers: the one place where webml opens an image file.

:func:`read_image` decodes a file only if it is a regular file (a FIFO or a
device would block or never end), at most :data:`MAX_IMAGE_BYTES` long, in
one of :data:`IMAGE_FORMATS` (Pillow's other plugins include ones that run
external programs), and whose *declared* size is at most
:data:`MAX_IMAGE_PIXELS`: Pillow reads the header lazily, so a
decompression bomb (a small file that declares a huge image) is refused
before any pixel is decoded.  A JPEG over the bound is decoded at 1/2, 1/4
or 1/8 scale (libjpeg's DCT scaling) when that brings it under, so large
camera photos still work in little memory.  Everything wrong with a file is
an :class:`UnreadableImageError` that names it (a missing file is a
``FileNotFoundError``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from .files import RefusedFileError, open_regular_file

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGE_FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "UnreadableImageError",
    "read_image",
    "read_rgb_image",
]

#: Pillow formats that are decoded (MPO: the JPEG variant many cameras write).
IMAGE_FORMATS = ("BMP", "GIF", "JPEG", "MPO", "PNG", "PPM", "TIFF", "WEBP")

#: File extensions (lower case) of those formats, for listing image folders.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

#: Largest image decoded, in pixels (8192 x 8192: at most ~450 MB while converting to RGB).
#: It is below Pillow's own warning threshold, so Pillow never warns about an image webml decodes.
MAX_IMAGE_PIXELS = 8192 * 8192

#: Largest image file read, in bytes.
MAX_IMAGE_BYTES = 256 * 2**20

_JPEG_SCALES = (2, 4, 8)  # the reductions libjpeg decodes directly


class UnreadableImageError(ValueError):
    """An image file that webml will not or cannot decode; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path!r} {reason}")


def _formats() -> list[str]:
    """Those of :data:`IMAGE_FORMATS` this Pillow decodes (WebP is an optional part of it)."""
    from PIL import Image

    Image.init()  # registers every plugin; Image.open would not look past the common ones
    return [f for f in IMAGE_FORMATS if f in Image.OPEN]


def _too_large(path: str, width: int, height: int, max_pixels: int) -> UnreadableImageError:
    return UnreadableImageError(
        path,
        f"declares {width} x {height} pixels ({width * height:,}), more than the {max_pixels:,} "
        "webml decodes (a decompression bomb, or an image to shrink first)",
    )


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int = MAX_IMAGE_PIXELS, max_bytes: int = MAX_IMAGE_BYTES
) -> Any:
    """The decoded PIL image in the file ``path`` (its own mode; the file is closed).

    Raises ``FileNotFoundError`` if there is no such file and
    :class:`UnreadableImageError` for anything else (see the module's notes).
    """
    from PIL import Image

    name = os.fspath(path)
    try:
        f = open_regular_file(name, max_bytes)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {name!r} does not exist") from None
    except RefusedFileError as exc:
        raise UnreadableImageError(name, exc.reason) from None
    with f:
        if os.fstat(f.fileno()).st_size == 0:
            raise UnreadableImageError(name, "is empty")
        try:
            with warnings.catch_warnings():
                # The bound below is webml's; Pillow's warning (at a larger size) would only repeat it.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(f, formats=_formats())  # reads the header only
            width, height = image.size
            if width * height > max_pixels and image.format in ("JPEG", "MPO"):
                for scale in _JPEG_SCALES:
                    if -(-width // scale) * -(-height // scale) <= max_pixels:
                        image.draft(image.mode, (width // scale, height // scale))
                        break
            if image.size[0] * image.size[1] > max_pixels:
                raise _too_large(name, width, height, max_pixels)
            image.load()
            return image
        except UnreadableImageError:
            raise
        except Image.DecompressionBombError:  # raised by Image.open, before the size can be read
            pillow = f" {2 * Image.MAX_IMAGE_PIXELS:,}" if Image.MAX_IMAGE_PIXELS else ""
            raise UnreadableImageError(
                name,
                f"declares more than Pillow's limit of{pillow} pixels, and webml decodes at most "
                f"{max_pixels:,} (a decompression bomb, or an image to shrink first)",
            ) from None
        except Image.UnidentifiedImageError:
            formats = ", ".join(IMAGE_FORMATS)
            raise UnreadableImageError(name, f"is not a readable image (not {formats})") from None
        except MemoryError:
            raise
        except Exception as exc:  # Pillow's decoders fail on corrupt data with many exception types
            raise UnreadableImageError(name, f"is not a readable image ({type(exc).__name__}: {exc})") from None


def read_rgb_image(image: Any, **limits: int) -> Any:
    """An RGB PIL image from a PIL image or the path of an image file (read with :func:`read_image`)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if not isinstance(image, str | os.PathLike):
        raise TypeError(f"expected a PIL image or the path of an image file, got {type(image).__name__}")
    decoded = read_image(image, **limits)
    return decoded if decoded.mode == "RGB" else decoded.convert("RGB")


#: Input normalizations of image models: ``(pixel - mean) / std`` on 0..255 RGB values.
NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)),
    "lite": ((127.0, 127.0, 127.0), (128.0, 128.0, 128.0)),
    "unit": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
}


def model_input_preparer(shape: list[int], normalize: str) -> Callable[[Any], Any]:
    """Image -> one input of an image model of input ``shape`` ([N, 3, H, W] or [N, H, W, 3]):
    ``[C, H, W]`` or ``[H, W, C]`` float32, the whole image resized, then normalized
    (a key of :data:`NORMALIZATIONS`)."""
    import numpy as np

    nchw = shape[1] == 3
    height, width = (shape[2], shape[3]) if nchw else (shape[1], shape[2])
    mean, std = (np.asarray(v, dtype=np.float64) for v in NORMALIZATIONS[normalize])

    def prepare(image: Any) -> Any:
        x = (np.asarray(read_rgb_image(image).resize((width, height)), dtype=np.float64) - mean) / std
        return (x.transpose(2, 0, 1) if nchw else x).astype(np.float32)

    return prepare

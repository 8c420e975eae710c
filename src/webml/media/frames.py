"""Frames as planes: what a frame's memory looks like, checked before a graph is built for it.

A :class:`FrameLayout` describes one frame geometry: its pixel format, size,
and the bytes per row of each plane (a decoder pads rows: FFmpeg aligns them
for SIMD, so a 642-pixel-wide Y plane has 704-byte rows).  A graph built by
:mod:`webml.media.colour` takes each plane as a ``uint8`` input of
``[rows, row_bytes]``, exactly the memory the decoder wrote, so that
:meth:`webml.MLContext.import_tensor` can hand it over without a copy; the
graph slices the pixels out of the padded rows.

Formats (the planes, in order):

========  ===========================================================  ===========
format    planes                                                       sizes
========  ===========================================================  ===========
``I420``  Y, U (Cb), V (Cr): 8-bit 4:2:0, the chroma at half size       even
``NV12``  Y, then Cb and Cr interleaved at half size (UVUV...)          even
``RGB``   one plane, 3 bytes a pixel                                    any
``BGR``   one plane, 3 bytes a pixel (OpenCV's order)                   any
``RGBA``  one plane, 4 bytes a pixel (the alpha is dropped)             any
``BGRA``  one plane, 4 bytes a pixel (the alpha is dropped)             any
========  ===========================================================  ===========

The 4:2:0 formats take even widths and heights: a half-size chroma plane
of an odd size would cover half a pixel, which codecs do not make (x264
refuses odd sizes) and which :func:`frame_layout` refuses with a clear error.

>>> layout = frame_layout("I420", 640, 480)
>>> [(p.name, p.rows, p.row_bytes) for p in layout.planes]
[('y', 480, 640), ('u', 240, 320), ('v', 240, 320)]
>>> frame_layout("I420", 641, 480)
Traceback (most recent call last):
...
ValueError: frame: an I420 frame needs an even width and height (4:2:0 chroma covers 2x2 pixels), got 641x480
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "FORMATS",
    "MATRICES",
    "RANGES",
    "ColourSpace",
    "FrameLayout",
    "PlaneLayout",
    "colour_space_of",
    "frame_layout",
    "layout_of",
    "plane_arrays",
]

#: Pixel formats: bytes per pixel of each plane (a 4:2:0 chroma plane counts its half-size pixels).
FORMATS: dict[str, tuple[int, ...]] = {
    "I420": (1, 1, 1),
    "NV12": (1, 2),
    "RGB": (3,),
    "BGR": (3,),
    "RGBA": (4,),
    "BGRA": (4,),
}
YUV_FORMATS = ("I420", "NV12")
#: YCbCr matrices: (Kr, Kb) of ITU-R BT.601 and BT.709.
MATRICES: dict[str, tuple[float, float]] = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}
#: "limited": Y in 16..235 and Cb, Cr in 16..240 (video); "full": 0..255 (JPEG, most cameras' MJPEG).
RANGES = ("limited", "full")
#: The largest frame side taken (8K is 7680): bounds every tensor before it is allocated.
MAX_SIDE = 16384

#: PyAV (FFmpeg) pixel format names of the formats above.
_AV_FORMATS = {"yuv420p": "I420", "yuvj420p": "I420", "nv12": "NV12", "rgb24": "RGB", "bgr24": "BGR"}
_AV_FORMATS |= {"rgba": "RGBA", "bgra": "BGRA"}


@dataclass(frozen=True)
class PlaneLayout:
    """One plane: ``rows`` rows of ``row_bytes`` bytes, of which the first ``width_bytes`` are pixels."""

    name: str
    rows: int
    row_bytes: int
    width_bytes: int


@dataclass(frozen=True)
class FrameLayout:
    """A frame geometry: format, size in pixels, and each plane's rows (see the module's table)."""

    format: str
    width: int
    height: int
    planes: tuple[PlaneLayout, ...]

    @property
    def chroma_size(self) -> tuple[int, int]:
        """(height, width) of the chroma planes (the full size for packed RGB)."""
        if self.format in YUV_FORMATS:
            return self.height // 2, self.width // 2
        return self.height, self.width

    def check_planes(self, arrays: Sequence[np.ndarray], where: str = "frame") -> None:
        """Refuse plane arrays that are not this layout's (count, dtype uint8, shape [rows, row_bytes])."""
        if len(arrays) != len(self.planes):
            raise ValueError(f"{where}: {self.format} frames have {len(self.planes)} planes, got {len(arrays)}")
        for plane, array in zip(self.planes, arrays):
            if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
                kind = getattr(array, "dtype", type(array).__name__)
                raise ValueError(f"{where}: plane {plane.name!r} must be a uint8 array, got {kind}")
            if array.shape != (plane.rows, plane.row_bytes):
                raise ValueError(
                    f"{where}: plane {plane.name!r} has shape {list(array.shape)}, the layout says "
                    f"[{plane.rows}, {plane.row_bytes}] (rows, bytes per row)"
                )


def _positive(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 < value <= MAX_SIDE:
        raise ValueError(f"{where}: {what} must be an integer from 1 to {MAX_SIDE}, got {value!r}")
    return int(value)


def frame_layout(
    format: str, width: int, height: int, row_bytes: Sequence[int] | None = None, *, where: str = "frame"
) -> FrameLayout:
    """The layout of a ``format`` frame of ``width`` x ``height`` pixels.

    ``row_bytes``: each plane's bytes per row (a decoder's ``line_size``); by default
    rows are not padded.  Raises ValueError naming what is wrong.
    """
    if format not in FORMATS:
        raise ValueError(f"{where}: format must be one of {', '.join(FORMATS)}, got {format!r}")
    width = _positive(width, "width", where)
    height = _positive(height, "height", where)
    if format in YUV_FORMATS and (width % 2 or height % 2):
        raise ValueError(
            f"{where}: an {format} frame needs an even width and height (4:2:0 chroma covers 2x2 pixels), "
            f"got {width}x{height}"
        )
    sizes = FORMATS[format]
    names = {"I420": ("y", "u", "v"), "NV12": ("y", "uv")}.get(format, ("pixels",))
    shapes = []
    for i, (name, pixel_bytes) in enumerate(zip(names, sizes)):
        chroma = format in YUV_FORMATS and i > 0
        rows, pixels = (height // 2, width // 2) if chroma else (height, width)
        shapes.append((name, rows, pixels * pixel_bytes))
    if row_bytes is None:
        row_bytes = [w for _, _, w in shapes]
    elif isinstance(row_bytes, str | bytes) or len(row_bytes) != len(shapes):
        raise ValueError(f"{where}: row_bytes must give one number per plane ({len(shapes)}), got {row_bytes!r}")
    planes = []
    for (name, rows, width_bytes), stride in zip(shapes, row_bytes):
        if isinstance(stride, bool) or not isinstance(stride, int | np.integer):
            raise ValueError(f"{where}: plane {name!r}: bytes per row must be an integer, got {stride!r}")
        # Padding is a few bytes to a few KiB (SIMD or DMA alignment); more is not a frame's.
        if not width_bytes <= stride <= 2 * width_bytes + 4096:
            raise ValueError(
                f"{where}: plane {name!r} has {stride} bytes per row for {width_bytes} bytes of pixels "
                f"(at least {width_bytes}, at most {2 * width_bytes + 4096})"
            )
        planes.append(PlaneLayout(name, rows, int(stride), width_bytes))
    return FrameLayout(format, width, height, tuple(planes))


def _av_format(frame: Any, where: str) -> str:
    name = frame.format.name
    if name not in _AV_FORMATS:
        raise ValueError(
            f"{where}: pixel format {name!r} is not one webml converts in the graph "
            f"({', '.join(_AV_FORMATS)}); reformat the frame first, e.g. frame.reformat(format='yuv420p')"
        )
    return _AV_FORMATS[name]


def layout_of(frame: Any, where: str = "frame") -> FrameLayout:
    """The layout of a PyAV ``VideoFrame`` (its format, size and planes' ``line_size``)."""
    format = _av_format(frame, where)
    layout = frame_layout(format, frame.width, frame.height, [p.line_size for p in frame.planes], where=where)
    for plane, p in zip(layout.planes, frame.planes):
        if p.height != plane.rows:  # a decoder's frame always agrees; a hand-made one might not
            raise ValueError(f"{where}: plane {plane.name!r} has {p.height} rows, {plane.rows} expected")
    return layout


def plane_arrays(frame: Any) -> list[np.ndarray]:
    """A PyAV frame's planes as ``[rows, line_size]`` uint8 arrays over the decoder's memory (no copy)."""
    return [np.frombuffer(p, dtype=np.uint8).reshape(p.height, p.line_size) for p in frame.planes]


@dataclass(frozen=True)
class ColourSpace:
    """How a YCbCr frame's numbers map to RGB: ``matrix`` (a key of :data:`MATRICES`) and ``range``."""

    matrix: str = "bt601"
    range: str = "limited"

    def __post_init__(self) -> None:
        if self.matrix not in MATRICES:
            raise ValueError(f"colour space: matrix must be one of {', '.join(MATRICES)}, got {self.matrix!r}")
        if self.range not in RANGES:
            raise ValueError(f"colour space: range must be one of {', '.join(RANGES)}, got {self.range!r}")


def colour_space_of(frame: Any) -> ColourSpace:
    """The colour space a PyAV frame says it has (FFmpeg's tags), with FFmpeg's defaults where it says nothing.

    Matrix: BT.709 when tagged so, else BT.601 (what FFmpeg's swscale assumes for an
    untagged frame, so the result agrees with ``frame.to_image()``).  Range: full for
    ``yuvj420p`` frames or ones tagged JPEG range, else limited.
    """
    matrix = "bt709" if int(frame.colorspace) == 1 else "bt601"
    full = frame.format.name == "yuvj420p" or int(frame.color_range) == 2
    return ColourSpace(matrix, "full" if full else "limited")

"""Frames into a model's input, as MLGraphBuilder operations: the host does no per-pixel work.

:func:`add_frame_inputs` declares a frame's planes as ``uint8`` inputs of
``[rows, row_bytes]`` (the decoder's memory as it is, see
:mod:`webml.media.frames`); :func:`to_rgb` converts them to float32 RGB
``[1, 3, H, W]`` on 0..255; :func:`model_input` adds a crop, a resize with
``resample2d``, the model's normalization and layout.  Everything is part of
the graph, so it is compiled with (and fused into) the model that follows.

YCbCr to RGB follows ITU-R BT.601 / BT.709 exactly (in float32):
``E'Y = (Y - 16) / 219`` and ``E'Cb,Cr = (C - 128) / 224`` in limited range
(``Y / 255`` and ``(C - 128) / 255`` in full range), then
``R = E'Y + 2 (1 - Kr) E'Cr``, ``B = E'Y + 2 (1 - Kb) E'Cb``,
``G = (E'Y - Kr R - Kb B) / Kg``, times 255, clamped to 0..255.  The
constants of both matrices and ranges fold into one 3x3 ``matmul`` with a bias
(and a model's normalization into the same matrix).

Chroma upsampling (4:2:0 to 4:4:4), ``chroma=``:

* ``"nearest"`` (default): each chroma sample covers its 2x2 block of luma
  pixels (``resample2d`` nearest-neighbor, exactly a 2x repeat), as OpenCV's
  ``cvtColor`` and FFmpeg's fast paths do;
* ``"linear"``: bilinear ``resample2d``, whose half-pixel centres place each
  chroma sample in the middle of its 2x2 block: the siting of JPEG, MPEG-1
  and WebCodecs' I420 (H.264's default siting is a quarter pixel left of it,
  horizontally co-sited with the even luma columns).

>>> import numpy, webml
>>> from webml.media.frames import frame_layout, ColourSpace
>>> context = webml.ml.create_context(backend="onnxruntime")
>>> builder = webml.MLGraphBuilder(context)
>>> layout = frame_layout("I420", 4, 2)
>>> planes = add_frame_inputs(builder, layout)
>>> graph = builder.build({"rgb": to_rgb(builder, planes, layout, ColourSpace("bt601", "limited"))})
>>> y = numpy.full((2, 4), 235, numpy.uint8); c = numpy.full((1, 2), 128, numpy.uint8)
>>> context.compute(graph, {"frame_y": y, "frame_u": c, "frame_v": c})["rgb"][0, :, 0, 0].round(3)  # white
array([255., 255., 255.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import webml

from .frames import MATRICES, YUV_FORMATS, ColourSpace, FrameLayout

__all__ = ["LAYOUTS", "Preprocess", "add_frame_inputs", "centre_crop", "model_input", "to_rgb", "yuv_to_rgb_matrix"]

LAYOUTS = ("nchw", "nhwc")
CHROMA = ("nearest", "linear")
_MODES = {"nearest": "nearest-neighbor", "linear": "linear"}


def yuv_to_rgb_matrix(colour: ColourSpace) -> tuple[np.ndarray, np.ndarray]:
    """(A, c) with ``RGB = A @ [Y, Cb, Cr] + c`` on 0..255 code values (float64, before clamping)."""
    kr, kb = MATRICES[colour.matrix]
    kg = 1 - kr - kb
    luma, chroma, black = (219.0, 224.0, 16.0) if colour.range == "limited" else (255.0, 255.0, 0.0)
    # Rows: R, G, B; columns: E'Y, E'Cb, E'Cr (the standard's equations, G solved from the luma equation).
    normalized = np.array(
        [
            [1.0, 0.0, 2 * (1 - kr)],
            [1.0, -2 * (1 - kb) * kb / kg, -2 * (1 - kr) * kr / kg],
            [1.0, 2 * (1 - kb), 0.0],
        ]
    )
    a = 255.0 * normalized / np.array([luma, chroma, chroma])
    c = -a @ np.array([black, 128.0, 128.0])
    return a, c


def add_frame_inputs(
    builder: webml.MLGraphBuilder, layout: FrameLayout, prefix: str = "frame"
) -> list[webml.MLOperand]:
    """One ``uint8`` input ``[rows, row_bytes]`` per plane, named ``{prefix}_{plane}`` (``frame_y``, ...)."""
    if not isinstance(layout, FrameLayout):
        raise TypeError(f"add_frame_inputs: layout must be a FrameLayout, got {type(layout).__name__}")
    return [
        builder.input(f"{prefix}_{p.name}", {"dataType": "uint8", "shape": [p.rows, p.row_bytes]})
        for p in layout.planes
    ]


def _pixels(b: webml.MLGraphBuilder, plane: webml.MLOperand, rows: int, width_bytes: int) -> webml.MLOperand:
    """The pixels of a plane's padded rows (a slice that costs nothing when there is no padding)."""
    if plane.shape[1] == width_bytes:
        return plane
    return b.slice(plane, [0, 0], [rows, width_bytes], label="media.unpad")


def to_rgb(
    builder: webml.MLGraphBuilder,
    planes: Sequence[webml.MLOperand],
    layout: FrameLayout,
    colour: ColourSpace | None = None,
    *,
    chroma: str = "nearest",
) -> webml.MLOperand:
    """The frame as float32 RGB ``[1, 3, height, width]`` on 0..255 (``colour``: YCbCr formats only)."""
    b = builder
    if len(planes) != len(layout.planes):
        raise TypeError(f"to_rgb: {layout.format} frames have {len(layout.planes)} planes, got {len(planes)}")
    if chroma not in CHROMA:
        raise ValueError(f"to_rgb: chroma must be one of {', '.join(CHROMA)}, got {chroma!r}")
    h, w = layout.height, layout.width
    pixels = [_pixels(b, op, p.rows, p.width_bytes) for op, p in zip(planes, layout.planes)]
    if layout.format not in YUV_FORMATS:
        channels = layout.planes[0].width_bytes // w
        hwc = b.cast(b.reshape(pixels[0], [h, w, channels]), "float32")
        if layout.format.startswith("BGR"):
            order = b.constant({"dataType": "int32", "shape": [3]}, np.array([2, 1, 0], np.int32))
            rgb = b.gather(hwc, order, axis=2, label="media.bgr")
        elif channels == 4:
            rgb = b.slice(hwc, [0, 0, 0], [h, w, 3], label="media.drop_alpha")
        else:
            rgb = hwc
        return b.reshape(b.transpose(rgb, permutation=[2, 0, 1]), [1, 3, h, w])
    colour = colour or ColourSpace()
    ch, cw = layout.chroma_size
    y = b.reshape(b.cast(pixels[0], "float32"), [1, 1, h, w])
    if layout.format == "I420":
        uv = b.concat([b.reshape(b.cast(p, "float32"), [1, 1, ch, cw]) for p in pixels[1:]], 1)
    else:  # NV12: Cb, Cr interleaved in each row
        uv = b.transpose(b.reshape(b.cast(pixels[1], "float32"), [ch, cw, 2]), permutation=[2, 0, 1])
        uv = b.reshape(uv, [1, 2, ch, cw])
    uv = b.resample2d(uv, mode=_MODES[chroma], sizes=[h, w], label="media.chroma")
    return _ycbcr_to_rgb(b, b.concat([y, uv], 1), colour)


def _yuv_resized(
    b: webml.MLGraphBuilder,
    planes: Sequence[webml.MLOperand],
    layout: FrameLayout,
    colour: ColourSpace,
    crop: tuple[int, int, int, int],
    size: tuple[int, int],
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
) -> webml.MLOperand:
    """Crop and bilinear resize of each plane first, then the colour matrix at the output's size.

    A model's input is usually far smaller than the frame: converting 224x224 pixels instead
    of 1280x720 is 18 times less work.  The luma crop is resized to ``size``; the chroma crop
    (the same area, at half resolution) is resized straight to ``size`` too, which is bilinear
    chroma upsampling with centred siting folded into the resize.  An odd crop offset or size
    is rounded down to even, so that both crops cover exactly the same pixels.
    """
    top, left, height, width = (v - v % 2 for v in crop)
    height, width = max(2, height), max(2, width)
    y_plane, *chroma_planes = (_pixels(b, op, p.rows, p.width_bytes) for op, p in zip(planes, layout.planes))
    y = b.slice(y_plane, [top, left], [height, width], label="media.crop_y")
    y = b.reshape(b.cast(y, "float32"), [1, 1, height, width])
    if layout.format == "I420":
        sliced = [b.slice(c, [top // 2, left // 2], [height // 2, width // 2]) for c in chroma_planes]
        uv = b.concat([b.reshape(b.cast(c, "float32"), [1, 1, height // 2, width // 2]) for c in sliced], 1)
    else:  # NV12: the interleaved row's bytes are 2 per chroma sample
        uv = b.slice(chroma_planes[0], [top // 2, left], [height // 2, width], label="media.crop_uv")
        uv = b.reshape(b.cast(uv, "float32"), [height // 2, width // 2, 2])
        uv = b.reshape(b.transpose(uv, permutation=[2, 0, 1]), [1, 2, height // 2, width // 2])
    sizes = [int(size[0]), int(size[1])]
    if [height, width] != sizes:
        y = b.resample2d(y, mode="linear", sizes=sizes, label="media.resize_y")
    uv = b.resample2d(uv, mode="linear", sizes=sizes, label="media.resize_chroma")
    return _ycbcr_to_rgb(b, b.concat([y, uv], 1), colour, mean, std)


def _ycbcr_to_rgb(
    b: webml.MLGraphBuilder,
    ycbcr: webml.MLOperand,
    colour: ColourSpace,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
) -> webml.MLOperand:
    """``[1, 3, H, W]`` Y, Cb, Cr code values -> RGB clamped to 0..255, then ``(x - mean) / std`` if given.

    One ``matmul`` of the 3x3 matrix with the ``[3, H * W]`` pixels (a 1x1 conv2d of 3 channels was
    6 times slower on ONNX Runtime's CPU kernels), its bias, and a clamp; a normalization folds into
    the matrix, the bias and the clamp's bounds (clamp and a per-channel affine map commute).
    """
    _, _, h, w = ycbcr.shape
    a, c = yuv_to_rgb_matrix(colour)
    low, high = np.zeros(3), np.full(3, 255.0)
    if mean is not None and std is not None:
        a, c = a / std[:, None], (c - mean) / std
        low, high = (
            np.minimum((low - mean) / std, (high - mean) / std),
            np.maximum((low - mean) / std, (high - mean) / std),
        )
    matrix = b.constant({"dataType": "float32", "shape": [3, 3]}, a.astype(np.float32))
    bias = b.constant({"dataType": "float32", "shape": [3, 1]}, c.astype(np.float32).reshape(3, 1))
    rgb = b.add(b.matmul(matrix, b.reshape(ycbcr, [3, h * w])), bias, label="media.ycbcr_to_rgb")
    if np.all(low == low[0]) and np.all(high == high[0]):
        rgb = b.clamp(rgb, min_value=float(low[0]), max_value=float(high[0]), label="media.clamp")
    else:  # per-channel bounds (a normalization with different means or scales)
        bound = lambda v: b.constant({"dataType": "float32", "shape": [3, 1]}, v.astype(np.float32).reshape(3, 1))  # noqa: E731
        rgb = b.max(b.min(rgb, bound(high)), bound(low), label="media.clamp")
    return b.reshape(rgb, [1, 3, h, w])


@dataclass(frozen=True)
class Preprocess:
    """What a model wants of a frame.

    * ``size``: (height, width) of the model's input; None keeps the (cropped) frame's;
    * ``crop``: (top, left, height, width) in frame pixels, applied before resizing (None: the whole frame;
      :func:`centre_crop` makes the usual central square);
    * ``mean``, ``std``: per-channel ``(x - mean) / std`` on 0..255 RGB values;
    * ``layout``: "nchw" or "nhwc"; ``resize``: "linear" or "nearest" (``resample2d``'s modes);
    * ``chroma``: 4:2:0 upsampling, as :func:`to_rgb`, when the frame is not resized.  A 4:2:0 frame
      resized bilinearly has each plane cropped and resized first and is converted at the output's
      size (far less work): the chroma is then resized straight from its half resolution, which is
      bilinear upsampling with centred siting, and a crop is rounded to even offsets and sizes.
    """

    size: tuple[int, int] | None = None
    crop: tuple[int, int, int, int] | None = None
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: str = "nchw"
    resize: str = "linear"
    chroma: str = "nearest"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"preprocess: layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.resize not in _MODES:
            raise ValueError(f"preprocess: resize must be one of {', '.join(_MODES)}, got {self.resize!r}")
        if self.chroma not in CHROMA:
            raise ValueError(f"preprocess: chroma must be one of {', '.join(CHROMA)}, got {self.chroma!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != 3 or not all(isinstance(v, int | float) and np.isfinite(v) for v in value):
                raise ValueError(f"preprocess: {name} must be three finite numbers, got {value!r}")
        if any(v == 0 for v in self.std):
            raise ValueError(f"preprocess: std must not be 0, got {self.std!r}")
        if self.size is not None and (len(self.size) != 2 or not all(isinstance(v, int) and v > 0 for v in self.size)):
            raise ValueError(f"preprocess: size must be (height, width), positive integers, got {self.size!r}")


def centre_crop(width: int, height: int, fraction: float = 1.0, *, even: bool = False) -> tuple[int, int, int, int]:
    """(top, left, side, side): the central square of ``fraction`` of the frame's shorter side.

    ``even``: offsets and side rounded down to even numbers, as a 4:2:0 frame's crop is (so
    that the chroma crop covers the same pixels).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"centre_crop: fraction must be in (0, 1], got {fraction!r}")
    side = max(1, round(min(width, height) * fraction))
    top, left = (height - side) // 2, (width - side) // 2
    if even:
        side, top, left = max(2, side - side % 2), top - top % 2, left - left % 2
    return top, left, side, side


def model_input(
    builder: webml.MLGraphBuilder,
    planes: Sequence[webml.MLOperand],
    layout: FrameLayout,
    colour: ColourSpace | None = None,
    preprocess: Preprocess | None = None,
) -> webml.MLOperand:
    """The frame as a model's float32 input ``[1, 3, H, W]`` (or ``[1, H, W, 3]``), prepared as ``preprocess`` says."""
    b = builder
    p = preprocess or Preprocess()
    crop = (0, 0, layout.height, layout.width) if p.crop is None else tuple(p.crop)
    top, left, height, width = crop
    if (
        not (0 <= top and 0 <= left and height > 0 and width > 0)
        or top + height > layout.height
        or left + width > layout.width
    ):
        raise ValueError(
            f"model_input: crop {crop} (top, left, height, width) is not inside the "
            f"{layout.width}x{layout.height} frame"
        )
    normalize = p.mean != (0.0, 0.0, 0.0) or p.std != (1.0, 1.0, 1.0)
    mean, std = np.asarray(p.mean, np.float64), np.asarray(p.std, np.float64)
    if layout.format in YUV_FORMATS and p.size is not None and p.resize == "linear":
        # The normalization folds into the colour matrix (the resize came first).
        rgb = _yuv_resized(b, planes, layout, colour or ColourSpace(), crop, p.size, mean, std)
        normalize = False
    else:
        rgb = to_rgb(b, planes, layout, colour, chroma=p.chroma)
        if crop != (0, 0, layout.height, layout.width):
            rgb = b.slice(rgb, [0, 0, top, left], [1, 3, height, width], label="media.crop")
        if p.size is not None and tuple(p.size) != tuple(rgb.shape[2:]):
            rgb = b.resample2d(rgb, mode=_MODES[p.resize], sizes=list(p.size), label="media.resize")
    if normalize:
        scale = b.constant(
            {"dataType": "float32", "shape": [1, 3, 1, 1]}, (1 / std).astype(np.float32).reshape(1, 3, 1, 1)
        )
        shift = b.constant(
            {"dataType": "float32", "shape": [1, 3, 1, 1]}, (-mean / std).astype(np.float32).reshape(1, 3, 1, 1)
        )
        rgb = b.add(b.mul(rgb, scale), shift, label="media.normalize")
    if p.layout == "nhwc":
        rgb = b.transpose(rgb, permutation=[0, 2, 3, 1], label="media.nhwc")
    return rgb

"""webml.media: in-graph colour conversion against a float64 formula of BT.601 / BT.709 and against OpenCV."""

from __future__ import annotations

import doctest

import cv2
import numpy as np
import pytest

import webml
import webml.media.colour
import webml.media.frames
from webml.media.colour import Preprocess, add_frame_inputs, centre_crop, model_input, to_rgb
from webml.media.frames import ColourSpace, frame_layout

rng = np.random.default_rng(18)
BACKENDS = ["onnxruntime", "openvino", "reference"]
# The standards' constants, written out here as the specifications give them (independent of webml's table).
KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


@pytest.mark.parametrize("module", [webml.media.colour, webml.media.frames])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def ycbcr_to_rgb_float64(y, cb, cr, matrix, full_range):
    """ITU-R BT.601 / BT.709: code values -> E'Y, E'Pb, E'Pr -> R'G'B' in 0..255 (float64, clamped)."""
    kr, kb = KR_KB[matrix]
    y, cb, cr = (np.asarray(v, np.float64) for v in (y, cb, cr))
    if full_range:
        ey, epb, epr = y / 255, (cb - 128) / 255, (cr - 128) / 255
    else:
        ey, epb, epr = (y - 16) / 219, (cb - 128) / 224, (cr - 128) / 224
    # E'Pr = (E'R - E'Y) / (2 (1 - Kr)), E'Pb = (E'B - E'Y) / (2 (1 - Kb)), E'Y = Kr E'R + Kg E'G + Kb E'B.
    r = ey + 2 * (1 - kr) * epr
    b = ey + 2 * (1 - kb) * epb
    g = (ey - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.stack([r, g, b]) * 255, 0, 255)


def _padded(plane, pad):
    """The plane in rows ``pad`` bytes longer, the padding random (a decoder's line_size)."""
    rows, width = plane.shape
    out = rng.integers(0, 256, (rows, width + pad), dtype=np.uint8)
    out[:, :width] = plane
    return out


def _random_frame(width, height, legal=False):
    """Random planes: every code value, or only the legal ones of limited range (Y 16..235, C 16..240)."""
    low, high_y, high_c = (16, 236, 241) if legal else (0, 256, 256)
    y = rng.integers(low, high_y, (height, width), dtype=np.uint8)
    u = rng.integers(low, high_c, (height // 2, width // 2), dtype=np.uint8)
    v = rng.integers(low, high_c, (height // 2, width // 2), dtype=np.uint8)
    return y, u, v


def _convert(backend, format, planes, width, height, colour=None, chroma="nearest"):
    context = webml.ml.create_context(backend=backend)
    layout = frame_layout(format, width, height, [p.shape[1] for p in planes])
    b = webml.MLGraphBuilder(context)
    inputs = add_frame_inputs(b, layout)
    graph = b.build({"rgb": to_rgb(b, inputs, layout, colour, chroma=chroma)})
    feeds = {f"frame_{p.name}": array for p, array in zip(layout.planes, planes)}
    return context.compute(graph, feeds)["rgb"][0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("format", ["I420", "NV12"])
@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
@pytest.mark.parametrize("full_range", [False, True])
def test_yuv420_matches_the_standard(backend, format, matrix, full_range):
    width, height = 34, 18
    y, u, v = _random_frame(width, height)
    if format == "I420":
        planes = [_padded(y, 14), _padded(u, 7), _padded(v, 7)]
    else:
        uv = np.stack([u, v], axis=-1).reshape(height // 2, width)
        planes = [_padded(y, 30), _padded(uv, 30)]
    colour = ColourSpace(matrix, "full" if full_range else "limited")
    got = _convert(backend, format, planes, width, height, colour)
    # 4:2:0 with each chroma sample over its 2x2 block (the default, "nearest").
    up = [np.repeat(np.repeat(c, 2, axis=0), 2, axis=1) for c in (u, v)]
    expected = ycbcr_to_rgb_float64(y, *up, matrix, full_range)
    assert got.shape == (3, height, width) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-3, rtol=0)  # float32 arithmetic on 0..255
    assert np.abs(np.round(got) - np.round(expected)).max() <= 1  # within 1 LSB after rounding


@pytest.mark.parametrize("format", ["I420", "NV12"])
def test_limited_range_bt601_matches_opencv(format):
    width, height = 64, 48
    # Legal values only: OpenCV clamps Y - 16 at 0 before its matrix, so it departs from the standard
    # (and from webml, which keeps the footroom's Y < 16 as BT.601 defines it) on Y below 16.
    y, u, v = _random_frame(width, height, legal=True)
    if format == "I420":
        planes = [y, u, v]
        stacked = np.concatenate([y, u.reshape(-1, width), v.reshape(-1, width)])
        opencv = cv2.cvtColor(stacked, cv2.COLOR_YUV2RGB_I420)
    else:
        uv = np.stack([u, v], axis=-1).reshape(height // 2, width)
        planes = [y, uv]
        opencv = cv2.cvtColor(np.concatenate([y, uv]), cv2.COLOR_YUV2RGB_NV12)
    got = _convert("onnxruntime", format, planes, width, height, ColourSpace("bt601", "limited"))
    diff = np.abs(np.round(got).astype(np.int16) - opencv.transpose(2, 0, 1).astype(np.int16))
    assert diff.max() <= 1, f"{(diff > 1).sum()} values differ from OpenCV by more than 1"


def test_full_range_bt601_matches_opencv_ycrcb():
    # OpenCV's YCrCb is JPEG's: BT.601, full range, 4:4:4 (so the chroma is repeated here as the graph does).
    width, height = 64, 48
    y, u, v = _random_frame(width, height)
    up = [np.repeat(np.repeat(c, 2, axis=0), 2, axis=1) for c in (u, v)]
    opencv = cv2.cvtColor(np.stack([y, up[1], up[0]], axis=-1), cv2.COLOR_YCrCb2RGB)
    got = _convert("onnxruntime", "I420", [y, u, v], width, height, ColourSpace("bt601", "full"))
    diff = np.abs(np.round(got).astype(np.int16) - opencv.transpose(2, 0, 1).astype(np.int16))
    assert diff.max() <= 1


@pytest.mark.parametrize(
    "format, code",
    [("RGB", None), ("BGR", cv2.COLOR_BGR2RGB), ("RGBA", cv2.COLOR_RGBA2RGB), ("BGRA", cv2.COLOR_BGRA2RGB)],
)
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_packed_formats_match_opencv(format, code, backend):
    width, height = 21, 13
    channels = len(format)
    packed = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    expected = packed if code is None else cv2.cvtColor(packed, code)
    got = _convert(backend, format, [_padded(packed.reshape(height, -1), 5)], width, height)
    np.testing.assert_array_equal(got, expected.transpose(2, 0, 1).astype(np.float32))


def test_linear_chroma_is_centred_bilinear():
    width, height = 16, 8
    y, u, v = _random_frame(width, height)
    got = _convert("onnxruntime", "I420", [y, u, v], width, height, ColourSpace("bt709", "full"), chroma="linear")

    # Centred siting: full-resolution sample x sits at chroma coordinate (x + 0.5) / 2 - 0.5, clamped.
    def upsample(c):
        def taps(n_out, n_in):
            pos = np.clip((np.arange(n_out) + 0.5) / 2 - 0.5, 0, n_in - 1)
            lo = np.floor(pos).astype(int)
            hi = np.minimum(lo + 1, n_in - 1)
            return lo, hi, pos - lo

        lo, hi, f = taps(height, c.shape[0])
        rows = c[lo] * (1 - f)[:, None] + c[hi] * f[:, None]
        lo, hi, f = taps(width, c.shape[1])
        return rows[:, lo] * (1 - f) + rows[:, hi] * f

    expected = ycbcr_to_rgb_float64(y, upsample(u.astype(np.float64)), upsample(v.astype(np.float64)), "bt709", True)
    np.testing.assert_allclose(got, expected, atol=2e-3, rtol=0)


def test_model_input_crop_resize_normalize_layout():
    width, height = 40, 30
    packed = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    context = webml.ml.create_context(backend="onnxruntime")
    layout = frame_layout("RGB", width, height)
    mean, std = (120.0, 110.0, 100.0), (60.0, 50.0, 40.0)
    crop = centre_crop(width, height, 0.8)
    assert crop == (3, 8, 24, 24)
    b = webml.MLGraphBuilder(context)
    inputs = add_frame_inputs(b, layout)
    pre = Preprocess(size=(12, 12), crop=crop, mean=mean, std=std, layout="nhwc")
    graph = b.build({"x": model_input(b, inputs, layout, None, pre)})
    got = context.compute(graph, {"frame_pixels": packed.reshape(height, -1)})["x"]
    assert got.shape == (1, 12, 12, 3)
    top, left, side, _ = crop
    region = packed[top : top + side, left : left + side].astype(np.float32)
    # 24 -> 12 with half-pixel centres: each output is the mean of a 2x2 block (bilinear at exactly 0.5).
    halved = region.reshape(12, 2, 12, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(got[0], (halved - mean) / std, atol=1e-4)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: frame_layout("I420", 641, 480), "even width and height"),
        (lambda: frame_layout("NV12", 640, 479), "even width and height"),
        (lambda: frame_layout("YUY2", 64, 48), "format must be one of"),
        (lambda: frame_layout("RGB", 0, 48), "width must be an integer from 1"),
        (lambda: frame_layout("RGB", 64, 48, [100]), "192 bytes of pixels"),
        (lambda: frame_layout("I420", 64, 48, [64, 32]), "one number per plane"),
        (lambda: ColourSpace("bt2020", "limited"), "matrix must be one of"),
        (lambda: ColourSpace("bt601", "tv"), "range must be one of"),
        (lambda: Preprocess(std=(1.0, 0.0, 1.0)), "std must not be 0"),
        (lambda: Preprocess(layout="chw"), "layout must be one of"),
        (lambda: centre_crop(10, 10, 1.5), "fraction must be in"),
    ],
)
def test_bad_layouts(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_planes_are_checked():
    layout = frame_layout("I420", 8, 4)
    with pytest.raises(ValueError, match="I420 frames have 3 planes, got 2"):
        layout.check_planes([np.zeros((4, 8), np.uint8)] * 2)
    with pytest.raises(ValueError, match="plane 'u' has shape \\[4, 8\\]"):
        layout.check_planes([np.zeros((4, 8), np.uint8)] * 3)
    with pytest.raises(ValueError, match="must be a uint8 array"):
        layout.check_planes([np.zeros((4, 8), np.float32), np.zeros((2, 4), np.uint8), np.zeros((2, 4), np.uint8)])


@pytest.mark.parametrize("format", ["I420", "NV12"])
def test_resized_yuv_frame_converts_at_the_output_size(format):
    """A resized 4:2:0 frame: each plane cropped and resized bilinearly (OpenCV's INTER_LINEAR as the anchor,
    the same half-pixel centres), then the standard's matrix at the output's size."""
    width, height = 96, 64
    y, u, v = _random_frame(width, height)
    if format == "I420":
        planes = [_padded(y, 32), u, v]
    else:
        planes = [y, np.stack([u, v], axis=-1).reshape(height // 2, width)]
    crop = (4, 10, 50, 60)  # even: the chroma crop is (2, 5, 25, 30)
    context = webml.ml.create_context(backend="onnxruntime")
    layout = frame_layout(format, width, height, [p.shape[1] for p in planes])
    b = webml.MLGraphBuilder(context)
    pre = Preprocess(size=(20, 24), crop=crop, mean=(127.0,) * 3, std=(128.0,) * 3)
    graph = b.build({"x": model_input(b, add_frame_inputs(b, layout), layout, ColourSpace("bt709", "limited"), pre)})
    got = context.compute(graph, {f"frame_{p.name}": a for p, a in zip(layout.planes, planes)})["x"][0]

    def resized(plane, t, l, h, w):
        region = plane[t : t + h, l : l + w].astype(np.float32)
        return cv2.resize(region, (24, 20), interpolation=cv2.INTER_LINEAR).astype(np.float64)

    top, left, h, w = crop
    chroma = [resized(c, top // 2, left // 2, h // 2, w // 2) for c in (u, v)]
    expected = (ycbcr_to_rgb_float64(resized(y, top, left, h, w), *chroma, "bt709", False) - 127) / 128
    np.testing.assert_allclose(got, expected, atol=5e-4)  # OpenCV's interpolation weights are 11-bit fixed point

"""conv2d, convTranspose2d and the pools on ONNX Runtime against the reference backend, over their options."""

from __future__ import annotations

import numpy as np
import pytest

import webml

RNG = np.random.default_rng(11)


@pytest.fixture(scope="module")
def contexts():
    return webml.ml.create_context(backend="reference"), webml.ml.create_context(backend="onnxruntime")


def run(context, method, data_type, arrays, constants=(), **options):
    builder = webml.MLGraphBuilder(context)
    operands = {}
    for name, array in arrays.items():
        desc = {"dataType": data_type, "shape": list(array.shape)}
        operands[name] = builder.constant(desc, array) if name in constants else builder.input(name, desc)
    args = [operands["x"]] + ([operands["w"]] if "w" in operands else [])
    if "b" in operands:
        options["bias"] = operands["b"]
    graph = builder.build({"y": getattr(builder, method)(*args, **options)})
    return context.compute(graph, {k: v for k, v in arrays.items() if k not in constants})["y"]


def compare(contexts, method, data_type, arrays, constants=(), exact=False, **options):
    expected = run(contexts[0], method, data_type, arrays, constants, **options)
    actual = run(contexts[1], method, data_type, arrays, constants, **options)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if exact:
        np.testing.assert_array_equal(actual, expected)
    else:
        tol = 5e-3 if data_type == "float16" else 1e-5
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol * max(1.0, np.nanmax(np.abs(e), initial=0)))


def floats(shape, data_type):
    return RNG.uniform(-1, 1, size=shape).astype(np.float16 if data_type == "float16" else np.float32)


def nhwc(shape, layout):
    n, c, h, w = shape
    return (n, c, h, w) if layout == "nchw" else (n, h, w, c)


CONV2D_FILTERS = {"oihw": "oihw", "hwio": "hwio", "ohwi": "ohwi", "ihwo": "ihwo"}


@pytest.mark.parametrize("data_type", ["float32", "float16"])
@pytest.mark.parametrize("input_layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("filter_layout", ["oihw", "hwio", "ohwi", "ihwo"])
def test_conv2d(contexts, data_type, input_layout, filter_layout):
    groups, c, o, kh, kw = 2, 4, 6, 3, 2
    dims = {"o": o, "i": c // groups, "h": kh, "w": kw}
    arrays = {
        "x": floats(nhwc((2, c, 9, 8), input_layout), data_type),
        "w": floats([dims[a] for a in filter_layout], data_type),
        "b": floats((o,), data_type),
    }
    for constants in ((), ("w", "b")):
        compare(
            contexts,
            "conv2d",
            data_type,
            arrays,
            constants,
            padding=[1, 2, 0, 3],
            strides=[2, 1],
            dilations=[1, 2],
            groups=groups,
            input_layout=input_layout,
            filter_layout=filter_layout,
        )


@pytest.mark.parametrize("data_type", ["float32", "float16"])
@pytest.mark.parametrize("input_layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("filter_layout", ["iohw", "hwoi", "ohwi"])
@pytest.mark.parametrize("sizes", ["padding", "sizes", None])
def test_conv_transpose2d(contexts, data_type, input_layout, filter_layout, sizes):
    groups, c, og, kh, kw = 2, 4, 3, 3, 2
    dims = {"i": c, "o": og, "h": kh, "w": kw}
    arrays = {
        "x": floats(nhwc((2, c, 5, 4), input_layout), data_type),
        "w": floats([dims[a] for a in filter_layout], data_type),
        "b": floats((og * groups,), data_type),
    }
    options = dict(
        padding=[1, 0, 2, 1],
        strides=[3, 2],
        dilations=[2, 1],
        groups=groups,
        input_layout=input_layout,
        filter_layout=filter_layout,
    )
    if sizes == "padding":
        options["output_padding"] = [2, 1]
    elif sizes == "sizes":
        # calculated: (5-1)*3 + 5 - 1 = 16, (4-1)*2 + 2 - 3 = 5
        options["output_sizes"] = [17, 6]
    compare(contexts, "conv_transpose2d", data_type, arrays, **options)


POOL_GEOMETRIES = [
    dict(window_dimensions=[3, 2]),
    dict(window_dimensions=[3, 3], strides=[2, 2], padding=[1, 2, 2, 1], output_shape_rounding="ceil"),
    dict(window_dimensions=[2, 2], strides=[2, 2], output_shape_rounding="ceil"),
    dict(window_dimensions=[2, 3], strides=[2, 3], padding=[0, 1, 0, 2], output_shape_rounding="ceil"),
    dict(window_dimensions=[2, 2], dilations=[2, 3], padding=[1, 1, 2, 0]),
    dict(window_dimensions=[2, 2], padding=[3, 2, 2, 4], strides=[2, 1]),  # pads not smaller than the window
    dict(window_dimensions=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1], output_sizes=[4, 4]),
    dict(window_dimensions=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1], output_sizes=[4, 3]),
    dict(window_dimensions=[2, 2], dilations=[3, 3], padding=[1, 1, 1, 1]),
    dict(),
]


@pytest.mark.parametrize("method", ["average_pool2d", "l2_pool2d", "max_pool2d"])
@pytest.mark.parametrize("data_type", ["float32", "float16"])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("geometry", range(len(POOL_GEOMETRIES)))
def test_pools(contexts, method, data_type, layout, geometry):
    options = dict(POOL_GEOMETRIES[geometry], layout=layout)
    x = floats(nhwc((2, 3, 7, 6), layout), data_type)
    compare(contexts, method, data_type, {"x": x}, exact=method == "max_pool2d", **options)


@pytest.mark.parametrize("data_type", ["int8", "uint8", "int32", "uint32", "int64", "uint64"])
@pytest.mark.parametrize("geometry", range(len(POOL_GEOMETRIES)))
def test_max_pool2d_integers(contexts, data_type, geometry):
    info = np.iinfo(np.dtype(data_type))
    x = RNG.integers(info.min, info.max, size=(2, 3, 7, 6), dtype=np.dtype(data_type), endpoint=True)
    x.ravel()[:4] = [info.min, info.max, info.min + 1, info.max - 1]
    compare(contexts, "max_pool2d", data_type, {"x": x}, exact=True, **POOL_GEOMETRIES[geometry])


WIDE_POOLS = [("max_pool2d", t) for t in ("float32", "float16", "int8", "uint8", "int32", "uint32", "int64", "uint64")]
WIDE_POOLS += [(op, t) for op in ("average_pool2d", "l2_pool2d") for t in ("float32", "float16")]


@pytest.mark.parametrize(("method", "data_type"), WIDE_POOLS)
@pytest.mark.parametrize("rounding", ["floor", "ceil"])
def test_pools_with_windows_wider_than_the_input(contexts, method, data_type, rounding):
    # Windows wider than the input are pooled over their taps inside it (ceil rounding adds windows wholly
    # in the padding): the same values as the reference.
    dtype = np.dtype(data_type)
    x = RNG.integers(-60, 60, size=(1, 2, 5, 4)) if dtype.kind in "iu" else RNG.normal(size=(1, 2, 5, 4)) * 10
    x = np.abs(x).astype(dtype) if dtype.kind == "u" else x.astype(dtype)
    options = dict(
        window_dimensions=[7, 3], padding=[3, 4, 1, 2], strides=[2, 3], dilations=[1, 2], output_shape_rounding=rounding
    )
    ref, ort = (run(c, method, data_type, {"x": x}, **options) for c in contexts)
    tolerance = 1e-2 if data_type == "float16" else 1e-5
    np.testing.assert_allclose(ort.astype(np.float64), ref.astype(np.float64), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("method", ["average_pool2d", "max_pool2d", "l2_pool2d"])
def test_a_huge_window_costs_no_more_than_the_input(contexts, method):
    # A 2**31-tall window (from a hostile ONNX file, say) must neither list its taps nor loop over them.
    x = RNG.normal(size=(1, 3, 8, 8)).astype(np.float32)
    options = dict(window_dimensions=[2**31, 2], padding=[2**30, 2**30 - 1, 1, 0])
    ref, ort = (run(c, method, "float32", {"x": x}, **options) for c in contexts)
    assert ref.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(ort, ref, rtol=1e-5, atol=1e-5)

"""conv2d and convTranspose2d: validation, shape rules (hypothesis) and reference results."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import webml

# Axis orders from the canonical layouts (nchw input, oihw / iohw filters) to each layout.
INPUT_FROM_NCHW = {"nchw": (0, 1, 2, 3), "nhwc": (0, 2, 3, 1)}
CONV2D_FILTER_FROM_OIHW = {"oihw": (0, 1, 2, 3), "hwio": (2, 3, 1, 0), "ohwi": (0, 2, 3, 1), "ihwo": (1, 2, 3, 0)}
CONV_TRANSPOSE2D_FILTER_FROM_IOHW = {"iohw": (0, 1, 2, 3), "hwoi": (2, 3, 1, 0), "ohwi": (1, 2, 3, 0)}


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, shape, data_type="float32"):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, method, input, filter, bias=None, **options):
    builder = webml.MLGraphBuilder(context)
    feeds = {"x": input, "w": filter}
    x = operand(builder, "x", input.shape, str(input.dtype))
    w = operand(builder, "w", filter.shape, str(filter.dtype))
    if bias is not None:
        options["bias"] = operand(builder, "b", bias.shape, str(bias.dtype))
        feeds["b"] = bias
    out = getattr(builder, method)(x, w, **options)
    graph = builder.build({"out": out})
    return context.compute(graph, feeds)["out"]


# -- independent models: loops straight from the definitions (tiny sizes only) ----------


def naive_conv2d(x, w, pad=(0, 0, 0, 0), strides=(1, 1), dilations=(1, 1), groups=1):
    """nchw input, oihw filter: out[n,o,y,x] = sum over c in o's group, i, j of in[..] * w[..]."""
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = (h - (kh - 1) * dilations[0] - 1 + pad[0] + pad[1]) // strides[0] + 1
    ow = (wd - (kw - 1) * dilations[1] - 1 + pad[2] + pad[3]) // strides[1] + 1
    out = np.zeros((n, o, oh, ow))
    for b, oc, y, xx, ic, i, j in itertools.product(
        range(n), range(o), range(oh), range(ow), range(cg), range(kh), range(kw)
    ):
        iy = y * strides[0] + i * dilations[0] - pad[0]
        ix = xx * strides[1] + j * dilations[1] - pad[2]
        if 0 <= iy < h and 0 <= ix < wd:
            out[b, oc, y, xx] += x[b, (oc // (o // groups)) * cg + ic, iy, ix] * w[oc, ic, i, j]
    return out


def naive_conv_transpose2d(x, w, pad=(0, 0, 0, 0), strides=(1, 1), dilations=(1, 1), groups=1, out_hw=None):
    """nchw input, iohw filter: each input pixel scatters input * filter tap into the output."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    if out_hw is None:
        out_hw = (
            (h - 1) * strides[0] + (kh - 1) * dilations[0] + 1 - pad[0] - pad[1],
            (wd - 1) * strides[1] + (kw - 1) * dilations[1] + 1 - pad[2] - pad[3],
        )
    out = np.zeros((n, og * groups, *out_hw))
    cg = c // groups
    for b, ic, y, xx, oc, i, j in itertools.product(
        range(n), range(c), range(h), range(wd), range(og), range(kh), range(kw)
    ):
        oy = y * strides[0] + i * dilations[0] - pad[0]
        ox = xx * strides[1] + j * dilations[1] - pad[2]
        if 0 <= oy < out_hw[0] and 0 <= ox < out_hw[1]:
            out[b, (ic // cg) * og + oc, oy, ox] += x[b, ic, y, xx] * w[ic, oc, i, j]
    return out


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# -- results ---------------------------------------------------------------------------------


def test_conv2d_hand_computed(context):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 3, 3), np.float32)
    out = compute(context, "conv2d", x, w)
    # Sums of the 3x3 windows of 0..15.
    np.testing.assert_array_equal(out, [[[[45, 54], [81, 90]]]])
    out = compute(context, "conv2d", x, w, padding=[1, 1, 1, 1], strides=[2, 2], bias=np.array([1], np.float32))
    np.testing.assert_array_equal(out, [[[[11, 25], [52, 91]]]])


def test_conv_transpose2d_hand_computed(context):
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    w = np.ones((1, 1, 2, 2), np.float32)
    out = compute(context, "conv_transpose2d", x, w)
    np.testing.assert_array_equal(out, [[[[1, 3, 2], [4, 10, 6], [3, 7, 4]]]])
    # Stride 2 with output_padding 1: the extra last row and column receive nothing.
    out = compute(context, "conv_transpose2d", x, w, strides=[2, 2], output_padding=[1, 1])
    expected = np.zeros((5, 5))
    expected[:4, :4] = np.kron([[1, 2], [3, 4]], np.ones((2, 2)))
    np.testing.assert_array_equal(out[0, 0], expected)


@pytest.mark.parametrize("input_layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("filter_layout", ["oihw", "hwio", "ohwi", "ihwo"])
def test_conv2d_layouts_groups_dilations(context, input_layout, filter_layout):
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, 2, 4, 7, 6), rand(rng, 6, 2, 3, 2), rand(rng, 6)
    opts = dict(pad=(1, 0, 2, 1), strides=(2, 1), dilations=(1, 2), groups=2)
    expected = naive_conv2d(x.astype(np.float64), w.astype(np.float64), **opts) + b[None, :, None, None]
    out = compute(
        context,
        "conv2d",
        x.transpose(INPUT_FROM_NCHW[input_layout]),
        w.transpose(CONV2D_FILTER_FROM_OIHW[filter_layout]),
        b,
        padding=list(opts["pad"]),
        strides=list(opts["strides"]),
        dilations=list(opts["dilations"]),
        groups=2,
        input_layout=input_layout,
        filter_layout=filter_layout,
    )
    np.testing.assert_allclose(out, expected.transpose(INPUT_FROM_NCHW[input_layout]), rtol=1e-5, atol=1e-5)


def test_conv2d_depthwise(context):
    rng = np.random.default_rng(2)
    x, w = rand(rng, 1, 3, 5, 5), rand(rng, 3, 1, 3, 3)
    out = compute(context, "conv2d", x, w, groups=3, padding=[1, 1, 1, 1])
    expected = naive_conv2d(x.astype(np.float64), w.astype(np.float64), pad=(1, 1, 1, 1), groups=3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("input_layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("filter_layout", ["iohw", "hwoi", "ohwi"])
def test_conv_transpose2d_layouts_groups_dilations(context, input_layout, filter_layout):
    rng = np.random.default_rng(3)
    x, w, b = rand(rng, 2, 4, 3, 4), rand(rng, 4, 3, 3, 2), rand(rng, 6)
    opts = dict(pad=(1, 0, 0, 2), strides=(2, 3), dilations=(2, 1), groups=2)
    expected = naive_conv_transpose2d(x.astype(np.float64), w.astype(np.float64), **opts) + b[None, :, None, None]
    out = compute(
        context,
        "conv_transpose2d",
        x.transpose(INPUT_FROM_NCHW[input_layout]),
        w.transpose(CONV_TRANSPOSE2D_FILTER_FROM_IOHW[filter_layout]),
        b,
        padding=list(opts["pad"]),
        strides=list(opts["strides"]),
        dilations=list(opts["dilations"]),
        groups=2,
        input_layout=input_layout,
        filter_layout=filter_layout,
    )
    np.testing.assert_allclose(out, expected.transpose(INPUT_FROM_NCHW[input_layout]), rtol=1e-5, atol=1e-5)


def test_conv_transpose2d_output_sizes(context):
    rng = np.random.default_rng(4)
    x, w = rand(rng, 1, 2, 3, 3), rand(rng, 2, 1, 3, 3)
    # Calculated sizes are (3-1)*3+3-1-1 = 7 and (3-1)*2+3-0-0 = 7; output_sizes may add up to stride-1.
    out = compute(
        context,
        "conv_transpose2d",
        x,
        w,
        strides=[3, 2],
        padding=[1, 1, 0, 0],
        output_sizes=[9, 8],
        output_padding=[5, 5],
    )
    expected = naive_conv_transpose2d(
        x.astype(np.float64), w.astype(np.float64), pad=(1, 1, 0, 0), strides=(3, 2), out_hw=(9, 8)
    )
    assert out.shape == (1, 1, 9, 8)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_conv2d_float16(context):
    x = np.full((1, 2, 3, 3), 0.5, np.float16)
    w = np.ones((1, 2, 3, 3), np.float16)
    out = compute(context, "conv2d", x, w)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, [[[[9.0]]]])


# -- validation ------------------------------------------------------------------------------


def raises(builder_call, *words):
    with pytest.raises(TypeError) as info:
        builder_call()
    message = str(info.value)
    assert "[t]" in message, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    "options, words",
    [
        ({"padding": [1, 1]}, ["padding", "4"]),
        ({"strides": [1]}, ["strides", "2"]),
        ({"strides": [1, 0]}, ["strides"]),
        ({"dilations": [0, 1]}, ["dilations"]),
        ({"dilations": [1, 1, 1]}, ["dilations"]),
        ({"groups": 0}, ["groups"]),
        ({"groups": 3}, ["groups", "input channels"]),  # 4 % 3 != 0
        ({"groups": 2}, ["groups", "filter"]),  # 4 / 2 != filter input channels 4
        ({"padding": [1, 1, 1, -1]}, ["padding[3]"]),
        ({"strides": [2**32, 1]}, ["strides[0]"]),
        ({"input_layout": "nwhc"}, ["input_layout"]),
        ({"filter_layout": "iohw"}, ["filter_layout"]),
        ({"dilations": [3, 1]}, ["height"]),  # effective filter 7 > 5
        ({"dilations": [1, 328442]}, ["width"]),
    ],
)
def test_conv2d_invalid_options(builder, options, words):
    x, w = operand(builder, "x", (1, 4, 5, 5)), operand(builder, "w", (6, 4, 3, 3))
    raises(lambda: builder.conv2d(x, w, label="t", **options), *words)


def test_conv2d_invalid_operands(builder):
    x, w = operand(builder, "x", (1, 4, 5, 5)), operand(builder, "w", (6, 2, 3, 3))
    raises(lambda: builder.conv2d(x, w, groups=2, bias=operand(builder, "b1", (4,)), label="t"), "bias", "[6]")
    raises(lambda: builder.conv2d(x, w, groups=2, bias=operand(builder, "b2", (6,), "float16"), label="t"), "bias")
    raises(lambda: builder.conv2d(x, operand(builder, "w16", (6, 2, 3, 3), "float16"), groups=2, label="t"), "filter")
    raises(lambda: builder.conv2d(x, operand(builder, "w3", (6, 2, 3)), label="t"), "filter", "rank")
    raises(lambda: builder.conv2d(operand(builder, "xi", (1, 4, 5, 5), "int32"), w, label="t"), "input")
    # 4 input channels split in 4 groups of the filter's 1, but 6 output channels do not.
    x4, w4 = operand(builder, "x4", (1, 4, 5, 5)), operand(builder, "w4", (6, 1, 3, 3))
    raises(lambda: builder.conv2d(x4, w4, groups=4, label="t"), "output channels", "groups")


@pytest.mark.parametrize(
    "options, words",
    [
        ({"padding": [1, 1, 1]}, ["padding"]),
        ({"strides": [1, 0]}, ["strides"]),
        ({"dilations": [1]}, ["dilations"]),
        ({"output_padding": [1, 1, 1]}, ["output_padding"]),
        ({"output_padding": [1, 0]}, ["output_padding", "strides"]),  # not smaller than stride 1
        ({"strides": [2, 2], "output_padding": [0, 2]}, ["output_padding"]),
        ({"output_sizes": [1, 2, 3]}, ["output_sizes"]),
        ({"strides": [2, 2], "output_sizes": [8, 7]}, ["output_sizes[0]", "[9, 11)"]),  # calculated 9
        ({"strides": [2, 2], "output_sizes": [9, 13]}, ["output_sizes[1]", "[11, 13)"]),
        ({"groups": 0}, ["groups"]),
        ({"groups": 2**32 - 1}, ["output channels"]),
        ({"padding": [6, 6, 0, 0]}, ["height"]),
        ({"dilations": [1, 4294967295]}, ["width"]),
        ({"filter_layout": "oihw"}, ["filter_layout"]),
        ({"input_layout": "chwn"}, ["input_layout"]),
    ],
)
def test_conv_transpose2d_invalid_options(builder, options, words):
    x, w = operand(builder, "x", (1, 2, 4, 5)), operand(builder, "w", (2, 3, 3, 3))
    raises(lambda: builder.conv_transpose2d(x, w, label="t", **options), *words)


def test_conv_transpose2d_invalid_operands(builder):
    x, w = operand(builder, "x", (1, 2, 4, 5)), operand(builder, "w", (2, 3, 3, 3))
    raises(lambda: builder.conv_transpose2d(x, w, groups=2, bias=operand(builder, "b", (3,)), label="t"), "bias", "[6]")
    raises(lambda: builder.conv_transpose2d(x, operand(builder, "w2", (3, 3, 3, 3)), label="t"), "input channels")
    raises(lambda: builder.conv_transpose2d(x, w, bias=operand(builder, "b2", (3, 1)), label="t"), "bias", "rank")
    raises(lambda: builder.conv_transpose2d(x, w, bias=operand(builder, "b3", (3,), "float16"), label="t"), "bias")


def test_conv_transpose2d_output_sizes_ignore_output_padding(builder):
    # output_padding is not checked against strides when output_sizes are given (WPT agrees).
    x, w = operand(builder, "x", (1, 1, 3, 3)), operand(builder, "w", (1, 1, 3, 3))
    out = builder.conv_transpose2d(x, w, strides=[3, 2], output_padding=[3, 3], output_sizes=[10, 8])
    assert out.shape == [1, 1, 10, 8]


# -- shape rules against the spec's formulas (hypothesis) -----------------------------------------

LAYOUT = st.sampled_from(["nchw", "nhwc"])


@st.composite
def conv2d_arguments(draw):
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    strides = draw(st.lists(st.integers(1, 4), min_size=2, max_size=2))
    dilations = draw(st.lists(st.integers(1, 3), min_size=2, max_size=2))
    padding = draw(st.lists(st.integers(0, 3), min_size=4, max_size=4))
    # Inputs at least as large as the effective filter, so every size is valid.
    h = draw(st.integers((kh - 1) * dilations[0] + 1, 12))
    w = draw(st.integers((kw - 1) * dilations[1] + 1, 12))
    return dict(
        n=draw(st.integers(1, 2)),
        c=cg * groups,
        h=h,
        w=w,
        o=og * groups,
        cg=cg,
        kh=kh,
        kw=kw,
        padding=padding,
        strides=strides,
        dilations=dilations,
        groups=groups,
        input_layout=draw(LAYOUT),
        filter_layout=draw(st.sampled_from(list(CONV2D_FILTER_FROM_OIHW))),
    )


def _lay_out(nchw, layout):
    return [nchw[i] for i in INPUT_FROM_NCHW[layout]]


@settings(max_examples=50, deadline=None)
@given(conv2d_arguments())
def test_conv2d_shape_rule(context, a):
    builder = webml.MLGraphBuilder(context)
    x = operand(builder, "x", _lay_out([a["n"], a["c"], a["h"], a["w"]], a["input_layout"]))
    oihw = [a["o"], a["cg"], a["kh"], a["kw"]]
    w = operand(builder, "w", [oihw[i] for i in CONV2D_FILTER_FROM_OIHW[a["filter_layout"]]])
    out = builder.conv2d(
        x,
        w,
        padding=a["padding"],
        strides=a["strides"],
        dilations=a["dilations"],
        groups=a["groups"],
        input_layout=a["input_layout"],
        filter_layout=a["filter_layout"],
        bias=operand(builder, "b", [a["o"]]),
    )
    p, s, d = a["padding"], a["strides"], a["dilations"]
    # The spec: outputSize = 1 + (inputSize - (filterSize - 1) * dilation - 1 + beginning + ending) / stride, floored.
    oh = int(np.floor(1 + (a["h"] - (a["kh"] - 1) * d[0] - 1 + p[0] + p[1]) / s[0]))
    ow = int(np.floor(1 + (a["w"] - (a["kw"] - 1) * d[1] - 1 + p[2] + p[3]) / s[1]))
    assert out.shape == _lay_out([a["n"], a["o"], oh, ow], a["input_layout"])
    assert out.data_type == "float32"


@st.composite
def conv_transpose2d_arguments(draw):
    groups = draw(st.integers(1, 3))
    strides = draw(st.lists(st.integers(1, 4), min_size=2, max_size=2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dilations = draw(st.lists(st.integers(1, 3), min_size=2, max_size=2))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    full = ((h - 1) * strides[0] + (kh - 1) * dilations[0] + 1, (w - 1) * strides[1] + (kw - 1) * dilations[1] + 1)
    # Padding that leaves at least one output row and column.
    ph = draw(st.integers(0, full[0] - 1))
    pw = draw(st.integers(0, full[1] - 1))
    padding = [draw(st.integers(0, ph)), 0, draw(st.integers(0, pw)), 0]
    padding[1], padding[3] = ph - padding[0], pw - padding[2]
    output_padding = [draw(st.integers(0, s - 1)) for s in strides]
    use_sizes = draw(st.booleans())
    return dict(
        n=draw(st.integers(1, 2)),
        c=draw(st.integers(1, 3)) * groups,
        h=h,
        w=w,
        og=draw(st.integers(1, 3)),
        kh=kh,
        kw=kw,
        padding=padding,
        strides=strides,
        dilations=dilations,
        output_padding=output_padding,
        output_extra=[draw(st.integers(0, s - 1)) for s in strides] if use_sizes else None,
        groups=groups,
        input_layout=draw(LAYOUT),
        filter_layout=draw(st.sampled_from(list(CONV_TRANSPOSE2D_FILTER_FROM_IOHW))),
    )


@settings(max_examples=50, deadline=None)
@given(conv_transpose2d_arguments())
def test_conv_transpose2d_shape_rule(context, a):
    builder = webml.MLGraphBuilder(context)
    p, s, d = a["padding"], a["strides"], a["dilations"]
    # The spec: outputSize = (inputSize - 1) * stride + (filterSize - 1) * dilation + 1 - padding + outputPadding.
    calculated = (
        (a["h"] - 1) * s[0] + (a["kh"] - 1) * d[0] + 1 - p[0] - p[1],
        (a["w"] - 1) * s[1] + (a["kw"] - 1) * d[1] + 1 - p[2] - p[3],
    )
    options = {}
    if a["output_extra"] is None:
        expected = [calculated[0] + a["output_padding"][0], calculated[1] + a["output_padding"][1]]
        options["output_padding"] = a["output_padding"]
    else:
        expected = [calculated[0] + a["output_extra"][0], calculated[1] + a["output_extra"][1]]
        options["output_sizes"] = expected
    x = operand(builder, "x", _lay_out([a["n"], a["c"], a["h"], a["w"]], a["input_layout"]))
    iohw = [a["c"], a["og"], a["kh"], a["kw"]]
    w = operand(builder, "w", [iohw[i] for i in CONV_TRANSPOSE2D_FILTER_FROM_IOHW[a["filter_layout"]]])
    out = builder.conv_transpose2d(
        x,
        w,
        padding=p,
        strides=s,
        dilations=d,
        groups=a["groups"],
        input_layout=a["input_layout"],
        filter_layout=a["filter_layout"],
        **options,
    )
    assert out.shape == _lay_out([a["n"], a["og"] * a["groups"], *expected], a["input_layout"])


# One invalid argument at a time; the error must name it.
CONV_OPTION_BREAKERS = st.sampled_from(
    [
        ("padding", st.lists(st.integers(0, 3), min_size=0, max_size=6).filter(lambda v: len(v) != 4)),
        ("strides", st.lists(st.integers(0, 3), min_size=0, max_size=4).filter(lambda v: len(v) != 2 or 0 in v)),
        ("dilations", st.lists(st.integers(0, 3), min_size=0, max_size=4).filter(lambda v: len(v) != 2 or 0 in v)),
        ("groups", st.sampled_from([0, -1, 0.5, float("nan"), float("inf"), 2**32, "2"])),
        ("input_layout", st.text(max_size=5).filter(lambda v: v not in ("nchw", "nhwc"))),
        ("padding", st.lists(st.integers(-(2**40), -1) | st.integers(2**32, 2**40), min_size=4, max_size=4)),
    ]
)


@settings(max_examples=50, deadline=None)
@given(CONV_OPTION_BREAKERS.flatmap(lambda kv: st.tuples(st.just(kv[0]), kv[1])), st.booleans())
def test_invalid_options_raise_type_error_naming_them(context, breaker, transpose):
    name, value = breaker
    builder = webml.MLGraphBuilder(context)
    x, w = operand(builder, "x", (1, 2, 6, 6)), operand(builder, "w", (2, 2, 3, 3))
    method = builder.conv_transpose2d if transpose else builder.conv2d
    with pytest.raises(TypeError) as info:
        method(x, w, label="t", **{name: value})
    assert "[t]" in str(info.value) and name in str(info.value)

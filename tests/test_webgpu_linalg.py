"""The webgpu kernels of matmul, gemm, conv, pool and resample against the reference backend, on shapes WPT
does not cover: odd sizes, broadcasting, packed float16 / 8- and 4-bit storage, grids beyond 65,535
workgroups; and the fast matmul programs (tiled, subgroup) against the plain one and against Tint."""

from __future__ import annotations

import numpy as np
import pytest

import webml
from webml import dtypes
from webml.backends.webgpu import linalg
from webml.backends.webgpu.device import default_gpu
from webml.backends.webgpu.shaders import browser_source, seen
from wgsl_tools import tint_errors

# The context's device (create_context's default): whether the subgroup program can run here.
SUBGROUPS = "subgroup" in default_gpu("high-performance").features


@pytest.fixture(scope="module")
def gpu():
    return webml.ml.create_context(backend="webgpu")


@pytest.fixture(scope="module")
def ref():
    return webml.ml.create_context(backend="reference")


def _values(data_type, shape, seed):
    rng = np.random.default_rng(seed)
    if dtypes.is_float(data_type):
        return rng.standard_normal(shape).astype(dtypes.numpy_dtype(data_type))
    lo, hi = dtypes.int_bounds(data_type)
    lo, hi = max(lo, -(2**31)), min(hi, 2**31 - 1)  # 64-bit values load saturated to 32 bits (codecs)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtypes.numpy_dtype(data_type))


def compute(context, build, operands, data_type="float32", seed=0):
    """``build(builder, *inputs)`` on ``context`` with random inputs of the given shapes."""
    b = webml.MLGraphBuilder(context)
    names = [f"x{i}" for i in range(len(operands))]
    inputs = [b.input(n, {"dataType": data_type, "shape": list(s)}) for n, s in zip(names, operands)]
    graph = b.build({"y": build(b, *inputs)})
    values = {n: _values(data_type, s, seed + i) for i, (n, s) in enumerate(zip(names, operands))}
    return context.compute(graph, values)["y"]


def both(gpu, ref, build, operands, data_type="float32", **tolerance):
    got = compute(gpu, build, operands, data_type)
    want = compute(ref, build, operands, data_type)
    assert got.shape == want.shape and got.dtype == want.dtype
    if dtypes.is_float(data_type):
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), **tolerance)
    else:
        np.testing.assert_array_equal(got, want)
    return got


@pytest.fixture
def force(monkeypatch):
    def use(way):
        monkeypatch.setattr(linalg, "FORCE", way)

    return use


# -- matmul and gemm: the three programs ------------------------------------------------------------------------

PRODUCTS = [
    ((1, 1), (1, 1)),
    ((3, 5), (5, 7)),
    ((33, 17), (17, 35)),  # nothing a multiple of the 32 x 32 x 16 tiles
    ((31, 64), (64, 36)),  # vec4 loads of A and B, a partial tile
    ((2, 1, 45, 19), (3, 19, 33)),  # batch broadcasting both ways
    ((4, 3, 8), (8, 5)),  # b broadcast over a's batch
    ((5, 300), (300, 1)),  # a long reduction
]


@pytest.mark.parametrize(("shape_a", "shape_b"), PRODUCTS)
@pytest.mark.parametrize("way", ["plain", "tiled", "subgroup"])
def test_matmul_programs_equal_the_reference(gpu, ref, force, shape_a, shape_b, way):
    force(way)
    if way == "subgroup" and not SUBGROUPS:  # refused at build, never run wrong
        with pytest.raises(webml.OperationError, match="subgroup feature"):
            compute(gpu, lambda b, x, y: b.matmul(x, y), [shape_a, shape_b])
        return
    got = both(gpu, ref, lambda b, x, y: b.matmul(x, y), [shape_a, shape_b], rtol=1e-5, atol=1e-5)
    force("plain")
    plain = compute(gpu, lambda b, x, y: b.matmul(x, y), [shape_a, shape_b])
    np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-5)


GEMMS = [
    # a, b, c, options
    ((13, 37), (37, 9), (9,), {"alpha": 0.5, "beta": -2.0}),
    ((37, 13), (9, 37), (13, 1), {"a_transpose": True, "b_transpose": True, "beta": 0.25}),
    ((40, 64), (64, 48), (), {"alpha": 2.0}),
    ((3, 400), (400, 2), (3, 2), {"beta": 0.0}),
    ((16, 16), (16, 16), None, {"b_transpose": True}),
]


@pytest.mark.parametrize(("shape_a", "shape_b", "shape_c", "options"), GEMMS)
@pytest.mark.parametrize("way", ["plain", "tiled", "subgroup"])
def test_gemm_programs_equal_the_reference(gpu, ref, force, shape_a, shape_b, shape_c, options, way):
    force(way)
    shapes = [shape_a, shape_b] + ([] if shape_c is None else [shape_c])

    def build(b, x, y, c=None):
        return b.gemm(x, y, **options, **({} if c is None else {"c": c}))

    if way == "subgroup" and not SUBGROUPS:
        with pytest.raises(webml.OperationError, match="subgroup feature"):
            compute(gpu, build, shapes)
        return
    both(gpu, ref, build, shapes, rtol=1e-5, atol=1e-5)


def test_the_fast_programs_are_chosen_by_shape(gpu):
    """float32 products of a real size are tiled, matrix-vector ones use subgroups; float16 stays plain."""
    names = []
    for data_type, a, b in (
        ("float32", (64, 64), (64, 64)),
        ("float32", (2, 1024), (1024, 1)),
        ("float32", (2, 3), (3, 2)),
        ("float16", (64, 64), (64, 64)),
    ):
        before = set(seen())
        compute(gpu, lambda g, x, y: g.matmul(x, y), [a, b], data_type)
        names.append({n.rsplit("-", 1)[0] for n in set(seen()) - before} or {"cached"})
    assert names[0] <= {"matmul-tiled", "cached"}
    assert names[1] <= ({"matmul-subgroup", "cached"} if SUBGROUPS else {"matmul-tiled", "cached"})
    assert names[2] <= {"matmul-plain", "cached"}
    assert names[3] <= {"matmul-plain", "cached"}


def test_tiled_grid_beyond_65535_workgroups(gpu, ref, force):
    """70,000 batches of one tile each: the flat workgroup index spans a 2-D grid."""
    force("tiled")
    both(gpu, ref, lambda b, x, y: b.matmul(x, y), [(70000, 2, 3), (70000, 3, 2)], rtol=1e-5, atol=1e-5)


def test_float16_matmul_accumulates_in_f32(gpu, ref):
    both(gpu, ref, lambda b, x, y: b.matmul(x, y), [(3, 7, 129), (129, 5)], "float16", rtol=2e-3, atol=2e-2)


def test_browsers_accept_the_fast_programs(gpu, force):
    """Tint (Chrome) accepts the tiled and subgroup programs in their browser form, `enable subgroups;` added."""
    for way in ("tiled", "subgroup") if SUBGROUPS else ("tiled",):
        force(way)
        compute(gpu, lambda b, x, y, c: b.gemm(x, y, c=c, b_transpose=True), [(21, 10), (7, 10), (7,)])
        compute(gpu, lambda b, x, y: b.matmul(x, y), [(2, 1, 8, 12), (3, 12, 20)])
    fast = ("matmul-tiled", "gemm-tiled", "matmul-subgroup", "gemm-subgroup")
    sources = {n: s for n, s in seen().items() if n.rsplit("-", 1)[0] in fast}
    assert len(sources) >= (8 if SUBGROUPS else 4)
    assert any(s.startswith("enable subgroups;") for s in sources.values()) == SUBGROUPS
    assert tint_errors(sources) == {}


def test_browser_source_enables_subgroups_only_when_used():
    plain = "@compute @workgroup_size(1) fn main() {}"
    assert browser_source(plain) == plain
    uses = "fn f(x: f32) -> f32 { return subgroupAdd(x); }"
    assert browser_source(uses) == "enable subgroups;\n" + uses
    assert browser_source(browser_source(uses)) == "enable subgroups;\n" + uses


# -- conv ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data_type", ["float32", "float16"])
def test_conv2d_layouts_groups_dilations(gpu, ref, data_type):
    tol = {"rtol": 1e-5, "atol": 1e-5} if data_type == "float32" else {"rtol": 2e-3, "atol": 2e-2}
    # nhwc input [1, 11, 9, 6], ohwi filter [4, 3, 2, 3]: groups 2, odd output sizes (float16 packing).
    both(
        gpu,
        ref,
        lambda b, x, w, bias: b.conv2d(
            x,
            w,
            bias=bias,
            padding=[2, 1, 0, 3],
            strides=[2, 3],
            dilations=[2, 1],
            groups=2,
            input_layout="nhwc",
            filter_layout="ohwi",
        ),
        [(1, 11, 9, 6), (4, 3, 2, 3), (4,)],
        data_type,
        **tol,
    )
    # Depthwise, nchw / hwio.
    both(
        gpu,
        ref,
        lambda b, x, w: b.conv2d(x, w, padding=[1, 1, 1, 1], groups=5, filter_layout="hwio"),
        [(2, 5, 7, 7), (3, 3, 1, 5)],
        data_type,
        **tol,
    )


@pytest.mark.parametrize(("input_layout", "filter_layout"), [("nchw", "iohw"), ("nhwc", "hwoi"), ("nhwc", "ohwi")])
def test_conv_transpose2d_layouts_groups_output_padding(gpu, ref, input_layout, filter_layout):
    c, og, kh, kw = 6, 2, 3, 2
    shape_x = (2, c, 5, 4) if input_layout == "nchw" else (2, 5, 4, c)
    canonical = {"i": c, "o": og, "h": kh, "w": kw}
    shape_w = tuple(canonical[d] for d in filter_layout)
    both(
        gpu,
        ref,
        lambda b, x, w, bias: b.conv_transpose2d(
            x,
            w,
            bias=bias,
            padding=[1, 0, 2, 1],
            strides=[3, 2],
            dilations=[1, 2],
            output_padding=[2, 1],
            groups=3,
            input_layout=input_layout,
            filter_layout=filter_layout,
        ),
        [shape_x, shape_w, (og * 3,)],
        rtol=1e-5,
        atol=1e-5,
    )


# -- pool ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["average_pool2d", "l2_pool2d", "max_pool2d"])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_pools_with_dilations_padding_and_ceil(gpu, ref, op, layout):
    shape = (2, 3, 10, 7) if layout == "nchw" else (2, 10, 7, 3)
    got = both(
        gpu,
        ref,
        lambda b, x: getattr(b, op)(
            x,
            window_dimensions=[3, 2],
            padding=[1, 4, 0, 2],
            strides=[3, 2],
            dilations=[2, 3],
            layout=layout,
            output_shape_rounding="ceil",
        ),
        [shape],
        rtol=1e-5,
        atol=1e-6,
        equal_nan=True,
    )
    if op == "average_pool2d":  # the last rows' windows lie wholly in the padding: 0 / 0
        assert np.isnan(got).any()


@pytest.mark.parametrize("data_type", ["int8", "uint8", "int64", "uint64", "float16"])
def test_max_pool2d_packed_types(gpu, ref, data_type):
    """Sub-word outputs of odd sizes: each invocation packs whole words."""
    both(gpu, ref, lambda b, x: b.max_pool2d(x, window_dimensions=[2, 3], strides=[1, 2]), [(1, 3, 5, 7)], data_type)


def test_average_pool2d_beyond_65535_workgroups(gpu, ref):
    """4.5 M outputs (more than 65,535 * 64): the map grid spans two dimensions."""
    both(
        gpu,
        ref,
        lambda b, x: b.average_pool2d(x, window_dimensions=[2, 2], padding=[1, 0, 1, 0], strides=[1, 1]),
        [(1, 1, 2100, 2143)],
        rtol=1e-6,
        atol=1e-6,
    )


# -- resample --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["nearest-neighbor", "linear"])
@pytest.mark.parametrize("data_type", ["float32", "float16", "uint8", "int8"])
def test_resample2d_odd_scales_axes_and_types(gpu, ref, mode, data_type):
    for options in ({"sizes": [7, 3]}, {"scales": [0.7, 2.6], "axes": [1, 3]}, {"sizes": [13, 2], "axes": [3, 0]}):

        def build(b, x, options=options):
            return b.resample2d(x, mode=mode, **options)

        if dtypes.is_float(data_type):
            tol = {"rtol": 1e-5, "atol": 1e-5} if data_type == "float32" else {"rtol": 2e-3, "atol": 2e-3}
            both(gpu, ref, build, [(3, 5, 4, 5)], data_type, **tol)
        elif mode == "nearest-neighbor":
            both(gpu, ref, build, [(3, 5, 4, 5)], data_type)
        else:
            # Integer linear rounds to the nearest; at exact halves the reference's float64 rounding noise
            # decides (0.5 - 1e-17 or 0.5 + 1e-17), f32's here: one apart there, equal elsewhere.
            got = compute(gpu, build, [(3, 5, 4, 5)], data_type).astype(np.int64)
            want = compute(ref, build, [(3, 5, 4, 5)], data_type).astype(np.int64)
            assert got.shape == want.shape and np.abs(got - want).max() <= 1
            assert np.mean(got == want) > 0.9


@pytest.mark.parametrize("filter_layout", ["oihw", "hwio", "ohwi", "ihwo"])
@pytest.mark.parametrize("input_layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("way", ["tiled", "plain"])
def test_conv2d_implicit_gemm_equals_the_plain_kernel(gpu, ref, force, monkeypatch, filter_layout, input_layout, way):
    """float32 conv2d with one group runs on the tiled matmul (im2col read in place); both equal the reference."""
    force(way)
    tiled_steps = []
    real_step = linalg.TiledMatmul.step
    monkeypatch.setattr(
        linalg.TiledMatmul, "step", lambda self, name: tiled_steps.append(name) or real_step(self, name)
    )
    canonical = {"o": 12, "i": 5, "h": 3, "w": 2}  # 12 columns: vec4 loads of B in hwio and ihwo
    shape_w = tuple(canonical[d] for d in filter_layout)
    shape_x = (2, 5, 13, 11) if input_layout == "nchw" else (2, 13, 11, 5)
    got = both(
        gpu,
        ref,
        lambda b, x, w, bias: b.conv2d(
            x,
            w,
            bias=bias,
            padding=[1, 2, 0, 1],
            strides=[2, 1],
            dilations=[1, 2],
            input_layout=input_layout,
            filter_layout=filter_layout,
        ),
        [shape_x, shape_w, (12,)],
        rtol=1e-5,
        atol=1e-5,
    )
    assert tiled_steps == (["conv2d-tiled"] if way == "tiled" else [])  # the webgpu build, not the reference's
    force("plain")
    plain = compute(
        gpu,
        lambda b, x, w, bias: b.conv2d(
            x,
            w,
            bias=bias,
            padding=[1, 2, 0, 1],
            strides=[2, 1],
            dilations=[1, 2],
            input_layout=input_layout,
            filter_layout=filter_layout,
        ),
        [shape_x, shape_w, (12,)],
    )
    np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-5)

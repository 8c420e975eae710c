"""The onnxruntime lowerings of the shape operators agree bit for bit with the reference backend."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import webml

ANY = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")
ALL = (*ANY, "int4", "uint4")

_FLOAT_EDGES = [
    np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 0.4, 0.5, 0.9999, 1.5, -0.5, -0.9999, -1.5, 2.5, -2.5,
    7.9, 8.0, -8.9, -9.0, 15.9, 16.0, 127.5, 128.0, -128.9, -129.0, 255.9, 256.0, 65504.0, -65504.0, 1e5, -1e5,
    2.0**31 - 128, 2.0**31, -(2.0**31), -(2.0**31) - 256, 2.0**32 - 256, 2.0**32, 2.0**63 - 2.0**39, 2.0**63,
    -(2.0**63), -(2.0**63) - 2.0**40, 2.0**64 - 2.0**40, 2.0**64, 1e30, -1e30, 3.4e38, -3.4e38,
]  # fmt: skip


def _values(data_type: str) -> np.ndarray:
    info = webml.dtypes.info(data_type)
    if info.is_float:
        with np.errstate(over="ignore"):
            return np.asarray(_FLOAT_EDGES, dtype=np.float64).astype(info.dtype)
    if data_type in ("int4", "uint4"):
        lo = -8 if data_type == "int4" else 0
        return np.arange(lo, lo + 16).astype(info.dtype)
    limits = np.iinfo(info.dtype)
    near = [limits.min, limits.min + 1, limits.max - 1, limits.max, 0, 1, 7, 8, 15, 16, 127, 128, 255, 256]
    near += [-1, -8, -9, -128, -129] if limits.min < 0 else [2**31, 2**32 - 1]
    return np.asarray([v for v in near if limits.min <= v <= limits.max], dtype=object).astype(info.dtype)


def _run(backend: str, build, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    context = webml.ml.create_context(backend=backend)
    builder = webml.MLGraphBuilder(context)
    inputs = {
        name: builder.input(name, {"dataType": webml.dtypes.data_type_of(a.dtype), "shape": list(a.shape)})
        for name, a in arrays.items()
    }
    graph = builder.build(build(builder, **inputs))
    return context.compute(graph, arrays)


def _agree(build, arrays: dict[str, np.ndarray]) -> None:
    expected = _run("reference", build, arrays)
    actual = _run("onnxruntime", build, arrays)
    assert expected.keys() == actual.keys()
    for name in expected:
        e, a = expected[name], actual[name]
        assert a.dtype == e.dtype and a.shape == e.shape, (name, a.dtype, a.shape, e.dtype, e.shape)
        # Bit-exact, NaNs included.
        assert e.tobytes() == a.tobytes(), (name, e, a)


@pytest.mark.parametrize("src", ALL)
def test_cast_every_pair_and_edge_value(src):
    x = _values(src)
    _agree(lambda b, x: {dst: b.cast(x, dst) for dst in ALL}, {"x": x})


def test_cast_scalar():
    _agree(lambda b, x: {dst: b.cast(x, dst) for dst in ALL}, {"x": np.asarray(np.nan, np.float32)})


def test_float16_rounding_to_and_from_float32():
    bits = np.arange(0, 2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    wide = np.random.default_rng(0).standard_normal(4096).astype(np.float32) * np.float32(2.0) ** np.arange(
        -30, 18, 48 / 4096, dtype=np.float32
    )
    _agree(lambda b, x: {"y": b.cast(x, "float32"), "z": b.cast(x, "int32")}, {"x": bits})
    _agree(lambda b, x: {"y": b.cast(x, "float16")}, {"x": wide})


@pytest.mark.parametrize("data_type", ANY)
def test_data_movement_every_type(data_type):
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(webml.dtypes.numpy_dtype(data_type))
    cond = (np.arange(12).reshape(3, 4) % 3 == 0).astype(np.uint8)

    def build(b, x, y, c):
        return {
            "concat": b.concat([x, y, x], 1),
            "expand": b.expand(x, [3, 2, 3, 4]),
            "reshape": b.reshape(x, [4, 6]),
            "tile": b.tile(x, [2, 1, 3]),
            "pad_constant": b.pad(x, [1, 0, 2], [0, 2, 1], value=7),
            "pad_edge": b.pad(x, [1, 0, 2], [0, 2, 1], mode="edge"),
            "pad_reflection": b.pad(x, [1, 0, 2], [0, 2, 3], mode="reflection"),
            "reverse_all": b.reverse(x),
            "reverse_some": b.reverse(x, axes=[0, 2]),
            "reverse_none": b.reverse(x, axes=[]),
            "transpose": b.transpose(x),
            "transpose_perm": b.transpose(x, permutation=[1, 0, 2]),
            "slice": b.slice(x, [1, 0, 1], [1, 3, 3], strides=[1, 2, 2]),
            "slice_all": b.slice(x, [0, 0, 0], [2, 3, 4]),
            **{f"split{i}": o for i, o in enumerate(b.split(x, [1, 3], axis=2))},
            **{f"split_even{i}": o for i, o in enumerate(b.split(x, 3, axis=1))},
            "upper": b.triangular(x),
            "lower": b.triangular(x, upper=False, diagonal=-1),
            "upper_shifted": b.triangular(x, diagonal=2),
            "where": b.where(c, x, y),
        }

    _agree(build, {"x": x, "y": x[:, :, ::-1].copy() + x.dtype.type(1), "c": cond})


def test_reshape_4bit():
    x = np.arange(-8, 8).astype(ml_dtypes.int4).reshape(4, 4)
    u = np.arange(16).astype(ml_dtypes.uint4).reshape(2, 8)
    _agree(lambda b, x, u: {"x": b.reshape(x, [2, 8]), "u": b.reshape(u, [16])}, {"x": x, "u": u})


def test_scalars():
    x, c = np.asarray(2.5, np.float32), np.asarray(0, np.uint8)
    _agree(
        lambda b, x, c: {
            "transpose": b.transpose(x),
            "reverse": b.reverse(x),
            "tile": b.tile(x, []),
            "expand": b.expand(x, [2, 3]),
            "reshape": b.reshape(x, [1, 1]),
            "where": b.where(c, x, x),
        },
        {"x": x, "c": c},
    )

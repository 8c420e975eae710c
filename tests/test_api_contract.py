"""The Python API contract of DESIGN.md: errors, lifetimes, buffers, dispatch."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import webml
from webml import dtypes
from webml.backends import BACKENDS

F32_2x3 = {"dataType": "float32", "shape": [2, 3]}


@pytest.fixture(params=BACKENDS)
def context(request):
    return webml.ml.create_context(backend=request.param)


def add_graph(context, shape=(2, 3)):
    builder = webml.MLGraphBuilder(context)
    desc = {"dataType": "float32", "shape": list(shape)}
    a = builder.input("a", desc)
    b = builder.input("b", desc)
    return builder.build({"c": builder.add(a, b)})


def tensor(context, desc=F32_2x3, **flags):
    return context.create_tensor({**desc, **flags})


def still_usable(context):
    """After any error the context builds and runs graphs as before."""
    graph = add_graph(context)
    out = context.compute(graph, {"a": np.ones((2, 3), np.float32), "b": np.full((2, 3), 2, np.float32)})
    np.testing.assert_array_equal(out["c"], np.full((2, 3), 3, np.float32))


# -- errors ------------------------------------------------------------------------


def test_dom_exceptions_have_spec_names():
    for cls in (
        webml.DataError,
        webml.InvalidStateError,
        webml.NotSupportedError,
        webml.OperationError,
        webml.SecurityError,
        webml.UnknownError,
        webml.AbortError,
        webml.NotAllowedError,
    ):
        assert issubclass(cls, webml.DOMException)
        assert cls.name == cls.__name__
        assert cls("x").name == cls.__name__


def test_operator_errors_are_type_errors_with_the_label(context):
    builder = webml.MLGraphBuilder(context)
    a = builder.input("a", F32_2x3)
    b = builder.input("b", {"dataType": "float32", "shape": [4]})
    with pytest.raises(TypeError, match=r"^\[my_add\] add: .*broadcast"):
        builder.add(a, b, label="my_add")
    i = builder.input("i", {"dataType": "int32", "shape": [2, 3]})
    with pytest.raises(TypeError, match=r"\[mixed\] add: b data type int32"):
        builder.add(a, i, label="mixed")
    still_usable(context)


def test_labels_are_sanitized(context):
    builder = webml.MLGraphBuilder(context)
    a = builder.input("a", F32_2x3)
    b = builder.input("b", {"dataType": "float32", "shape": [4]})
    with pytest.raises(TypeError) as info:
        builder.add(a, b, label="evil\u202ename")
    assert "\u202e" not in str(info.value)
    assert "[evil\\u202ename]" in str(info.value)


def test_wrong_argument_count_names_the_operator(context):
    builder = webml.MLGraphBuilder(context)
    a = builder.input("a", F32_2x3)
    with pytest.raises(TypeError, match=r"\[lbl\] add: "):
        builder.add(a, label="lbl")
    with pytest.raises(TypeError, match="add: .*unexpected keyword"):
        builder.add(a, a, alpha=1.0)
    with pytest.raises(TypeError, match="label must be a string"):
        builder.add(a, a, label=3)


def test_failed_call_leaves_the_builder_unchanged(context):
    builder = webml.MLGraphBuilder(context)
    a = builder.input("a", F32_2x3)
    before = (len(builder._nodes), builder._next_id)
    with pytest.raises(TypeError):
        builder.add(a, builder.input("b", {"dataType": "float16", "shape": [2, 3]}))
    assert len(builder._nodes) == before[0]
    c = builder.add(a, a)
    graph = builder.build({"c": c})
    assert list(graph.input_descriptors) == ["a"]  # the unused input is not a graph input


# -- builder lifetime ------------------------------------------------------------------


def test_build_once(context):
    builder = webml.MLGraphBuilder(context)
    a = builder.input("a", F32_2x3)
    c = builder.add(a, a)
    builder.build({"c": c})
    with pytest.raises(webml.InvalidStateError):
        builder.build({"c": c})
    with pytest.raises(webml.InvalidStateError):
        builder.add(a, a)
    with pytest.raises(webml.InvalidStateError):
        builder.input("b", F32_2x3)
    with pytest.raises(webml.InvalidStateError):
        builder.constant("float32", 1.0)
    still_usable(context)


def test_build_rejects_bad_outputs(context):
    builder = webml.MLGraphBuilder(context)
    a = builder.input("a", F32_2x3)
    k = builder.constant("float32", 2.0)
    with pytest.raises(TypeError, match="must not be empty"):
        builder.build({})
    with pytest.raises(TypeError, match="input or a constant"):
        builder.build({"a": a})
    with pytest.raises(TypeError, match="input or a constant"):
        builder.build({"k": k})
    with pytest.raises(TypeError, match="non-empty"):
        builder.build({"": builder.add(a, a)})
    # Failed builds do not consume the builder.
    builder.build({"c": builder.add(a, k)})


def test_operands_from_another_builder(context):
    b1 = webml.MLGraphBuilder(context)
    b2 = webml.MLGraphBuilder(context)
    a1 = b1.input("a", F32_2x3)
    a2 = b2.input("a", F32_2x3)
    with pytest.raises(TypeError, match=r"\[x\] add: a was created by another MLGraphBuilder"):
        b2.add(a1, a2, label="x")
    with pytest.raises(TypeError, match="another MLGraphBuilder"):
        b2.build({"out": b1.add(a1, a1)})
    b2.build({"out": b2.add(a2, a2)})


def test_duplicate_and_empty_input_names(context):
    builder = webml.MLGraphBuilder(context)
    builder.input("a", F32_2x3)
    with pytest.raises(TypeError, match="already exists"):
        builder.input("a", F32_2x3)
    with pytest.raises(TypeError, match="must not be empty"):
        builder.input("", F32_2x3)


# -- descriptors and buffers -------------------------------------------------------------


@pytest.mark.parametrize(
    "desc, message",
    [
        ({"dataType": "float32", "shape": [2, 0]}, "not valid"),
        ({"dataType": "float32", "shape": [-1]}, "out of the range"),
        ({"dataType": "int16", "shape": [2]}, "not a valid MLOperandDataType"),
        ({"dataType": "float32", "shape": [2] * 9}, "maximum rank"),
        ({"dataType": "float32", "shape": [2**31, 2]}, "not valid"),
        ({"dataType": "float32", "shape": [2**16, 2**16]}, "too large"),
        ({"shape": [2]}, "missing the required member 'dataType'"),
    ],
)
def test_invalid_descriptors(context, desc, message):
    builder = webml.MLGraphBuilder(context)
    with pytest.raises(TypeError, match=message):
        builder.input("x", desc)
    with pytest.raises(TypeError):
        context.create_tensor(desc)


def test_constant_byte_length_must_match(context):
    builder = webml.MLGraphBuilder(context)
    with pytest.raises(TypeError, match="holds 20 bytes .* needs 24"):
        builder.constant(F32_2x3, bytearray(20))
    with pytest.raises(TypeError, match="5 elements .* needs 6"):
        builder.constant(F32_2x3, np.zeros(5, np.float32))
    with pytest.raises(TypeError, match="dtype float64 does not match"):
        builder.constant(F32_2x3, np.zeros(6))
    # Raw bytes and element-wise arrays are both accepted.
    builder.constant(F32_2x3, bytearray(24))
    builder.constant(F32_2x3, np.zeros((3, 2), np.float32))
    builder.constant(F32_2x3, np.zeros(24, np.uint8))


def test_constant_copies_its_buffer(context):
    builder = webml.MLGraphBuilder(context)
    data = np.arange(6, dtype=np.float32)
    k = builder.constant(F32_2x3, data)
    a = builder.input("a", F32_2x3)
    graph = builder.build({"c": builder.add(a, k)})
    data[:] = 100  # the spec copies at constant(); later changes don't matter
    out = context.compute(graph, {"a": np.zeros((2, 3), np.float32)})["c"]
    np.testing.assert_array_equal(out.reshape(-1), np.arange(6, dtype=np.float32))


def test_scalar_constant_is_cast_per_spec(context):
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": "int8", "shape": [3]})
    graph = builder.build(
        {
            "a": builder.add(x, builder.constant("int8", 300)),  # clamps to 127
            "b": builder.add(x, builder.constant("int8", 2.5)),  # rounds half to even
        }
    )
    out = context.compute(graph, {"x": np.zeros(3, np.int8)})
    np.testing.assert_array_equal(out["a"], [127] * 3)
    np.testing.assert_array_equal(out["b"], [2] * 3)


@pytest.mark.parametrize("data_type", ["int4", "uint4"])
def test_4bit_packing_round_trip(context, data_type):
    dtype = dtypes.numpy_dtype(data_type)
    lo, hi = (-8, 7) if data_type == "int4" else (0, 15)
    values = np.arange(lo, hi + 1).astype(dtype)[:15]  # an odd count exercises the padding nibble
    raw = dtypes.to_bytes(data_type, values)
    assert len(raw) == 8
    first = int(values[0]) & 0xF
    assert raw[0] & 0xF == first  # low nibble first
    np.testing.assert_array_equal(dtypes.from_bytes(data_type, raw, (15,)), values)
    # Through the API: raw packed bytes and element-wise arrays give the same constant.
    desc = {"dataType": data_type, "shape": [15]}
    t1 = context.create_constant_tensor(desc, raw)
    t2 = context.create_constant_tensor(desc, values)
    np.testing.assert_array_equal(context._backend.read_tensor(t1._handle), values)
    np.testing.assert_array_equal(context._backend.read_tensor(t2._handle), values)
    with pytest.raises(TypeError, match="needs 8"):
        context.create_constant_tensor(desc, bytes(15))
    assert values.dtype == np.dtype(ml_dtypes.int4 if data_type == "int4" else ml_dtypes.uint4)


# -- tensors -------------------------------------------------------------------------------


def test_tensor_attributes(context):
    t = tensor(context, readable=True)
    assert (t.data_type, t.shape, t.readable, t.writable, t.constant) == (
        "float32",
        [2, 3],
        True,
        False,
        False,
    )
    c = context.create_constant_tensor(F32_2x3, np.zeros(6, np.float32))
    assert c.constant and not c.readable and not c.writable
    for name in ("data_type", "shape", "readable", "writable", "constant", "descriptor"):
        with pytest.raises(AttributeError):
            setattr(t, name, None)  # read-only, as in the spec's IDL


def test_read_unreadable_and_write_unwritable(context):
    t = tensor(context, writable=True)
    with pytest.raises(TypeError, match="not readable"):
        context.read_tensor(t)
    r = tensor(context, readable=True)
    with pytest.raises(TypeError, match="not writable"):
        context.write_tensor(r, np.zeros((2, 3), np.float32))
    still_usable(context)


def test_write_and_read_round_trip_and_into_buffer(context):
    t = tensor(context, readable=True, writable=True)
    np.testing.assert_array_equal(context.read_tensor(t), np.zeros((2, 3), np.float32))  # zero-filled
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    context.write_tensor(t, data)
    data[:] = -1  # writeTensor copied
    np.testing.assert_array_equal(context.read_tensor(t), np.arange(6, dtype=np.float32).reshape(2, 3))
    out = np.empty(6, np.float32)
    assert context.read_tensor(t, out) is None
    np.testing.assert_array_equal(out, np.arange(6, dtype=np.float32))
    raw = bytearray(24)
    context.read_tensor(t, raw)
    assert bytes(raw) == np.arange(6, dtype=np.float32).tobytes()
    with pytest.raises(TypeError, match="holds 20 bytes"):
        context.read_tensor(t, bytearray(20))
    with pytest.raises(TypeError, match="read-only"):
        context.read_tensor(t, bytes(24))
    with pytest.raises(TypeError, match="holds 16 bytes"):
        context.write_tensor(t, bytearray(16))


def test_tensor_destroy(context):
    t = tensor(context, readable=True, writable=True)
    t.destroy()
    t.destroy()  # idempotent
    with pytest.raises(TypeError, match="destroyed"):
        context.read_tensor(t)
    with pytest.raises(TypeError, match="destroyed"):
        context.write_tensor(t, np.zeros((2, 3), np.float32))
    still_usable(context)


# -- dispatch ----------------------------------------------------------------------------


def test_dispatch(context):
    graph = add_graph(context)
    a = tensor(context, writable=True)
    b = tensor(context, writable=True)
    c = tensor(context, readable=True)
    context.write_tensor(a, np.ones((2, 3), np.float32))
    context.write_tensor(b, np.full((2, 3), 5, np.float32))
    context.dispatch(graph, {"a": a, "b": b}, {"c": c})
    np.testing.assert_array_equal(context.read_tensor(c), np.full((2, 3), 6, np.float32))


def test_dispatch_errors_leave_everything_usable(context):
    graph = add_graph(context)
    a, b, c = tensor(context), tensor(context), tensor(context, readable=True)
    other = webml.ml.create_context(backend=context.backend)
    f16 = tensor(context, {"dataType": "float16", "shape": [2, 3]})
    wrong_shape = tensor(context, {"dataType": "float32", "shape": [3, 2]})
    const = context.create_constant_tensor(F32_2x3, np.zeros(6, np.float32))
    cases = [
        ({"a": a}, {"c": c}, "has 1 tensors but the graph has 2"),  # missing
        ({"a": a, "b": b, "x": tensor(context)}, {"c": c}, "has 3 tensors"),  # extra
        ({"a": a, "x": b}, {"c": c}, "no input named 'x'"),  # wrong name
        ({"a": a, "b": f16}, {"c": c}, "float16\\[2, 3\\], the graph expects float32\\[2, 3\\]"),
        ({"a": a, "b": wrong_shape}, {"c": c}, "expects float32\\[2, 3\\]"),
        ({"a": a, "b": a}, {"c": c}, "more than once"),
        ({"a": a, "b": b}, {"c": a}, "more than once"),
        ({"a": a, "b": const}, {"c": c}, "constant tensor"),
        ({"a": a, "b": tensor(other)}, {"c": c}, "another context"),
        ({"a": a, "b": b}, {}, "has 0 tensors"),
    ]
    for inputs, outputs, message in cases:
        with pytest.raises(TypeError, match=message):
            context.dispatch(graph, inputs, outputs)
    with pytest.raises(TypeError, match="another context"):
        other.dispatch(graph, {"a": a, "b": b}, {"c": c})
    context.dispatch(graph, {"a": a, "b": b}, {"c": c})
    still_usable(context)


def test_graph_destroy(context):
    graph = add_graph(context)
    graph.destroy()
    graph.destroy()
    a, b, c = tensor(context), tensor(context), tensor(context)
    with pytest.raises(webml.InvalidStateError):
        context.dispatch(graph, {"a": a, "b": b}, {"c": c})
    with pytest.raises(webml.InvalidStateError):
        context.compute(graph, {"a": np.zeros((2, 3), np.float32), "b": np.zeros((2, 3), np.float32)})
    still_usable(context)


def test_compute_checks_its_inputs(context):
    graph = add_graph(context)
    ok = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"missing inputs \['b'\]"):
        context.compute(graph, {"a": ok})
    with pytest.raises(TypeError, match=r"unknown inputs \['z'\]"):
        context.compute(graph, {"a": ok, "b": ok, "z": ok})
    with pytest.raises(TypeError, match="has dtype float64"):
        context.compute(graph, {"a": ok, "b": np.zeros((2, 3))})
    with pytest.raises(TypeError, match=r"has shape \[3, 2\]"):
        context.compute(graph, {"a": ok, "b": np.zeros((3, 2), np.float32)})
    still_usable(context)


# -- context lifetime ---------------------------------------------------------------------


def test_context_destroy_loses_everything():
    context = webml.ml.create_context()
    graph = add_graph(context)
    t = tensor(context, readable=True)
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", F32_2x3)
    assert not context.lost.done()
    context.destroy()
    context.destroy()
    assert context.lost.result()["message"]
    with pytest.raises(webml.InvalidStateError):
        webml.MLGraphBuilder(context)
    with pytest.raises(webml.InvalidStateError):
        builder.add(x, x)
    with pytest.raises(webml.InvalidStateError):
        context.create_tensor(F32_2x3)
    with pytest.raises(webml.InvalidStateError):
        context.dispatch(graph, {}, {})
    with pytest.raises(TypeError, match="destroyed"):
        context.read_tensor(t)


def test_create_context_options():
    ctx = webml.ml.create_context(power_preference="low-power", accelerated=False)
    assert ctx.power_preference == "low-power" and ctx.accelerated is False
    assert webml.ml.create_context().accelerated is True
    with pytest.raises(TypeError, match="power_preference"):
        webml.ml.create_context(power_preference="fast")
    with pytest.raises(webml.NotSupportedError, match="unknown backend"):
        webml.ml.create_context(backend="nope")
    with pytest.raises(TypeError):
        webml.ml.create_context("reference")  # options are keyword-only


def test_op_support_limits_shape(context):
    limits = context.op_support_limits()
    assert limits["preferredInputLayout"] in ("nchw", "nhwc")
    # A CPU engine's 2 GiB (as Chromium's); on webgpu the adapter's binding limit (lavapipe: 128 MiB).
    if context.backend == "webgpu":
        from webml.backends.webgpu.device import default_gpu

        gpu = default_gpu()
        assert limits["maxTensorByteLength"] == min(gpu.max_binding_bytes, gpu.limits["max-buffer-size"])
    else:
        assert limits["maxTensorByteLength"] == 2**31
    for key in ("input", "constant", "output"):
        assert set(limits[key]["dataTypes"]) >= {"float32", "float16", "int32", "int4", "uint4"}
        assert limits[key]["rankRange"]["min"] == 0
    assert limits["add"]["a"]["dataTypes"][:2] == ["float32", "float16"]


# -- what the layers read of each other (non-spec) ---------------------------------------------


def test_constant_tensor_data_is_a_read_only_view_of_a_live_constant(context):
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    constant = context.create_constant_tensor(F32_2x3, values)
    data = context.constant_tensor_data(constant, "build")
    np.testing.assert_array_equal(data, values)
    assert not data.flags.writeable  # a caller cannot change a constant behind the graphs using it
    with pytest.raises(TypeError, match="build: the tensor is not a constant tensor"):
        context.constant_tensor_data(tensor(context), "build")
    constant.destroy()
    with pytest.raises(TypeError, match="build: a constant tensor used by the graph is destroyed"):
        context.constant_tensor_data(constant, "build")


def test_a_builders_recorded_nodes_producers_and_operands(context):
    from webml.api.builder import operand_of, operand_value, producer, recorded_nodes

    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", F32_2x3)
    y = builder.relu(x)
    (node,) = recorded_nodes(builder)
    y_id = operand_value(y, builder, "test", "y").id
    assert node.op == "relu" and node.outputs == (y_id,)
    assert producer(builder, y_id) is node and producer(builder, operand_value(x, builder, "test", "x").id) is None
    assert operand_of(builder, y_id).shape == [2, 3]
    with pytest.raises(ValueError, match="no operand 99"):
        operand_of(builder, 99)
    with pytest.raises(TypeError, match="y was created by another MLGraphBuilder"):
        operand_value(y, webml.MLGraphBuilder(context), "test", "y")

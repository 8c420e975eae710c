"""webml.onnx.load: ONNX models rebuilt with MLGraphBuilder, checked against ONNX Runtime.

The models are built here with onnx.helper; ONNX Runtime running the same
model is the independent truth.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import webml
import webml.onnx as wo

BACKENDS = ["onnxruntime", "reference"]
RNG = np.random.default_rng(7)


def make_model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def tensor(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def ort_run(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def check_against_ort(model, feeds, backend, rtol=1e-4, atol=1e-5, free_dimensions=None):
    context = webml.ml.create_context(backend=backend)
    graph = wo.load(model, context, free_dimensions=free_dimensions)
    got = context.compute(graph, feeds)
    want = ort_run(model, feeds)
    assert set(got) == set(want)
    for name, expected in want.items():
        if expected.dtype == np.bool_:
            expected = expected.astype(np.uint8)
        np.testing.assert_allclose(got[name], expected, rtol=rtol, atol=atol, err_msg=name)
    return graph


# -- whole models ----------------------------------------------------------------------------


def small_cnn():
    f = np.float32
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["n1"], epsilon=1e-3),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], group=4, auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
        helper.make_node("AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
        helper.make_node("GlobalAveragePool", ["p2"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc", "fcb"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    inits = [
        init("w1", RNG.standard_normal((8, 3, 3, 3)).astype(f) * 0.3),
        init("b1", RNG.standard_normal(8).astype(f)),
        init("g", RNG.uniform(0.5, 1.5, 8).astype(f)),
        init("beta", RNG.standard_normal(8).astype(f)),
        init("mean", RNG.standard_normal(8).astype(f)),
        init("var", RNG.uniform(0.5, 2, 8).astype(f)),
        init("w2", RNG.standard_normal((8, 2, 3, 3)).astype(f) * 0.3),
        init("lo", np.array(0, f)),
        init("hi", np.array(6, f)),
        init("fc", RNG.standard_normal((10, 8)).astype(f)),
        init("fcb", RNG.standard_normal(10).astype(f)),
    ]
    return make_model(nodes, [tensor("x", ["N", 3, 17, 17])], [tensor("probs", ["N", 10])], inits, opset=13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_cnn_matches_onnxruntime(backend):
    x = RNG.standard_normal((2, 3, 17, 17)).astype(np.float32)
    graph = check_against_ort(small_cnn(), {"x": x}, backend, free_dimensions={"N": 2})
    assert list(graph.input_descriptors) == ["x"]
    assert list(graph.output_descriptors) == ["probs"]


def transformer_block(d=16, heads=2, opset=17):
    """Pre-norm self-attention + MLP, with the shape arithmetic of exported models."""
    f = np.float32
    hd = d // heads
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln_g", "ln_b"], ["ln"], axis=-1, epsilon=1e-5),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "i0"], ["batch"], axis=0),
        helper.make_node("Gather", ["shape", "i1"], ["seq"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "ax0"], ["batch1"]),
        helper.make_node("Unsqueeze", ["seq", "ax0"], ["seq1"]),
        helper.make_node("Concat", ["batch1", "seq1", "heads_hd"], ["split_shape"], axis=0),
        helper.make_node("Concat", ["batch1", "seq1", "dim"], ["merge_shape"], axis=0),
    ]
    for name in ("q", "k", "v"):
        nodes += [
            helper.make_node("MatMul", ["ln", f"w{name}"], [f"{name}_lin"]),
            helper.make_node("Add", [f"{name}_lin", f"b{name}"], [f"{name}_b"]),
            helper.make_node("Reshape", [f"{name}_b", "split_shape"], [f"{name}_r"]),
            helper.make_node("Transpose", [f"{name}_r"], [f"{name}_t"], perm=[0, 2, 1, 3]),
        ]
    nodes += [
        helper.make_node("Transpose", ["k_t"], ["k_tt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q_t", "k_tt"], ["scores"]),
        helper.make_node("Div", ["scores", "scale"], ["scaled"]),
        # A causal mask made of Range / Less / Where on static shapes.
        helper.make_node("Range", ["zero", "seq", "one"], ["pos"]),
        helper.make_node("Unsqueeze", ["pos", "ax1"], ["col"]),
        helper.make_node("Less", ["pos", "col"], ["future"]),
        helper.make_node("Where", ["future", "neg", "scaled"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "v_t"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx_t", "merge_shape"], ["ctx_m"]),
        helper.make_node("MatMul", ["ctx_m", "wo"], ["proj"]),
        helper.make_node("Add", ["x", "proj"], ["res1"]),
        helper.make_node("LayerNormalization", ["res1", "ln2_g", "ln2_b"], ["ln2"], axis=-1),
        helper.make_node("MatMul", ["ln2", "w_up"], ["up"]),
        # GELU written with Erf, as exporters before opset 20 do.
        helper.make_node("Div", ["up", "sqrt2"], ["up_s"]),
        helper.make_node("Erf", ["up_s"], ["erf"]),
        helper.make_node("Add", ["erf", "onef"], ["erf1"]),
        helper.make_node("Mul", ["up", "erf1"], ["g1"]),
        helper.make_node("Mul", ["g1", "half"], ["gelu"]),
        helper.make_node("MatMul", ["gelu", "w_down"], ["down"]),
        helper.make_node("Add", ["res1", "down"], ["y"]),
    ]
    i64 = np.int64
    inits = [
        init("ln_g", RNG.uniform(0.5, 1.5, d).astype(f)),
        init("ln_b", RNG.standard_normal(d).astype(f) * 0.1),
        init("ln2_g", RNG.uniform(0.5, 1.5, d).astype(f)),
        init("ln2_b", RNG.standard_normal(d).astype(f) * 0.1),
        init("i0", np.array(0, i64)),
        init("i1", np.array(1, i64)),
        init("ax0", np.array([0], i64)),
        init("ax1", np.array([1], i64)),
        init("heads_hd", np.array([heads, hd], i64)),
        init("dim", np.array([d], i64)),
        init("scale", np.array(math.sqrt(hd), f)),
        init("zero", np.array(0, i64)),
        init("one", np.array(1, i64)),
        init("neg", np.array(-1e9, f)),
        init("wo", RNG.standard_normal((d, d)).astype(f) * 0.2),
        init("w_up", RNG.standard_normal((d, 4 * d)).astype(f) * 0.2),
        init("w_down", RNG.standard_normal((4 * d, d)).astype(f) * 0.2),
        init("sqrt2", np.array(math.sqrt(2), f)),
        init("onef", np.array(1, f)),
        init("half", np.array(0.5, f)),
    ]
    for name in ("q", "k", "v"):
        inits += [
            init(f"w{name}", RNG.standard_normal((d, d)).astype(f) * 0.2),
            init(f"b{name}", RNG.standard_normal(d).astype(f) * 0.1),
        ]
    return make_model(nodes, [tensor("x", ["batch", "seq", d])], [tensor("y", ["batch", "seq", d])], inits, opset)


@pytest.mark.parametrize("backend", BACKENDS)
def test_transformer_block_matches_onnxruntime(backend):
    x = RNG.standard_normal((2, 5, 16)).astype(np.float32)
    graph = check_against_ort(transformer_block(), {"x": x}, backend, free_dimensions={"batch": 2, "seq": 5})
    ops = {node.op for node in graph.ir.nodes}
    # The shape arithmetic (Shape, Gather, Concat of shapes, Range, Less) was folded at import.
    assert "gather" not in ops and "concat" not in ops and "lesser" not in ops
    assert graph.output_descriptors["y"].shape == (2, 5, 16)


# -- opset variants ----------------------------------------------------------------------------


def _variant_cases():
    f = TensorProto.FLOAT
    i64 = np.int64
    yield "squeeze-attr", 11, [helper.make_node("Squeeze", ["x"], ["y"], axes=[1])], [1, 1, 3], []
    yield "squeeze-input", 13, [helper.make_node("Squeeze", ["x", "a"], ["y"])], [1, 1, 3], [init("a", i64([1]))]
    yield "unsqueeze-attr", 11, [helper.make_node("Unsqueeze", ["x"], ["y"], axes=[0, -1])], [2, 3], []
    yield "unsqueeze-input", 13, [helper.make_node("Unsqueeze", ["x", "a"], ["y"])], [2, 3], [init("a", i64([0, -1]))]
    yield "clip-attr", 7, [helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.5)], [3, 4], []
    yield "clip-input", 13, [helper.make_node("Clip", ["x", "", "m"], ["y"])], [3, 4], [init("m", np.float32(0.2))]
    yield "reducesum-attr", 11, [helper.make_node("ReduceSum", ["x"], ["y"], axes=[1], keepdims=0)], [2, 3, 4], []
    yield "reducesum-input", 13, [helper.make_node("ReduceSum", ["x", "a"], ["y"])], [2, 3, 4], [init("a", i64([-1]))]
    yield "reducemean-attr", 17, [helper.make_node("ReduceMean", ["x"], ["y"], axes=[0, 2])], [2, 3, 4], []
    yield "reducemean-input", 18, [helper.make_node("ReduceMean", ["x", "a"], ["y"])], [2, 3, 4], [init("a", i64([0]))]
    yield "pad-attr", 7, [helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 1, 2], mode="reflect")], [3, 4], []
    yield (
        "pad-input",
        13,
        [helper.make_node("Pad", ["x", "p", "v"], ["y"])],
        [3, 4],
        [
            init("p", i64([1, 0, 0, -1])),
            init("v", np.float32(2.5)),
        ],
    )
    yield "slice-attr", 9, [helper.make_node("Slice", ["x"], ["y"], starts=[1], ends=[100], axes=[1])], [3, 5], []
    yield (
        "slice-input-negative-step",
        13,
        [helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])],
        [3, 7],
        [
            init("s", i64([-1])),
            init("e", i64([-100])),
            init("a", i64([1])),
            init("st", i64([-2])),
        ],
    )
    yield "softmax-11-coerced", 11, [helper.make_node("Softmax", ["x"], ["y"], axis=1)], [2, 3, 4], []
    # Attributes left out take their schema's default in the model's opset.
    yield "softmax-11-default-axis", 11, [helper.make_node("Softmax", ["x"], ["y"])], [2, 3, 4], []
    yield "softmax-13-default-axis", 13, [helper.make_node("Softmax", ["x"], ["y"])], [2, 3, 4], []
    yield "hardmax-12-default-axis", 12, [helper.make_node("Hardmax", ["x"], ["y"])], [2, 3, 4], []
    yield "leakyrelu-default", 7, [helper.make_node("LeakyRelu", ["x"], ["y"])], [3, 4], []
    yield "hardsigmoid-default", 7, [helper.make_node("HardSigmoid", ["x"], ["y"])], [3, 4], []
    yield "selu-default", 7, [helper.make_node("Selu", ["x"], ["y"])], [3, 4], []
    yield "clip-default-bounds", 9, [helper.make_node("Clip", ["x"], ["y"])], [3, 4], []
    yield "flatten-default", 9, [helper.make_node("Flatten", ["x"], ["y"])], [2, 3, 4], []
    yield "argmax-7-default", 7, [helper.make_node("ArgMax", ["x"], ["y"])], [3, 4], []
    yield "maxpool-7", 7, [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2])], [1, 2, 5, 5], []
    yield "depthtospace-9", 9, [helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2)], [1, 8, 2, 3], []
    yield "spacetodepth-13", 13, [helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2)], [1, 2, 4, 6], []
    yield "logsoftmax-13", 13, [helper.make_node("LogSoftmax", ["x"], ["y"], axis=1)], [2, 3, 4], []
    yield (
        "upsample-9",
        9,
        [helper.make_node("Upsample", ["x", "s"], ["y"])],
        [1, 1, 2, 3],
        [init("s", np.float32([1, 1, 2, 3]))],
    )
    yield (
        "resize-linear-align",
        13,
        [
            helper.make_node(
                "Resize", ["x", "", "s"], ["y"], mode="linear", coordinate_transformation_mode="align_corners"
            )
        ],
        [1, 2, 3, 4],
        [init("s", np.float32([1, 1, 2, 1.5]))],
    )
    yield (
        "resize-nearest-half-pixel",
        13,
        [helper.make_node("Resize", ["x", "", "s"], ["y"])],
        [1, 2, 3, 4],
        [init("s", np.float32([1, 1, 2, 2]))],
    )
    yield (
        "gather-negative",
        13,
        [helper.make_node("Gather", ["x", "i"], ["y"], axis=1)],
        [2, 5],
        [init("i", i64([[-1, 0], [2, -5]]))],
    )
    del f


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(_variant_cases()), ids=lambda c: c[0])
def test_opset_variants_match_onnxruntime(case, backend):
    _, opset, nodes, shape, inits = case
    model = make_model(nodes, [tensor("x", shape)], [helper.make_empty_tensor_value_info("y")], inits, opset)
    model = onnx.shape_inference.infer_shapes(model)
    x = RNG.standard_normal(shape).astype(np.float32)
    check_against_ort(model, {"x": x}, backend)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split_variants(opset):
    x = RNG.standard_normal((2, 6)).astype(np.float32)
    if opset == 11:
        node, inits = helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[2, 4]), []
    elif opset == 13:
        node, inits = helper.make_node("Split", ["x", "s"], ["a", "b"], axis=1), [init("s", np.int64([2, 4]))]
    else:
        node, inits = helper.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2), []
    model = make_model([node], [tensor("x", [2, 6])], [tensor("a", None), tensor("b", None)], inits, opset)
    check_against_ort(model, {"x": x}, "reference")


def test_lstm_and_gru_match_onnxruntime():
    f = np.float32
    hidden, inp = 3, 4
    nodes = [
        helper.make_node(
            "LSTM", ["x", "w", "r", "b"], ["y", "yh", "yc"], hidden_size=hidden, direction="bidirectional"
        ),
        helper.make_node("GRU", ["x", "gw", "gr", "gb"], ["gy", "gh"], hidden_size=hidden, linear_before_reset=1),
    ]
    inits = [
        init("w", RNG.standard_normal((2, 4 * hidden, inp)).astype(f)),
        init("r", RNG.standard_normal((2, 4 * hidden, hidden)).astype(f)),
        init("b", RNG.standard_normal((2, 8 * hidden)).astype(f)),
        init("gw", RNG.standard_normal((1, 3 * hidden, inp)).astype(f)),
        init("gr", RNG.standard_normal((1, 3 * hidden, hidden)).astype(f)),
        init("gb", RNG.standard_normal((1, 6 * hidden)).astype(f)),
    ]
    outs = [helper.make_empty_tensor_value_info(n) for n in ("y", "yh", "yc", "gy", "gh")]
    model = make_model(nodes, [tensor("x", [5, 2, inp])], outs, inits, 14)
    x = RNG.standard_normal((5, 2, inp)).astype(f)
    for backend in BACKENDS:
        check_against_ort(model, {"x": x}, backend)


def test_attributes_take_the_schema_defaults_of_the_opset():
    from webml.onnx.importer import attributes

    softmax = helper.make_node("Softmax", ["x"], ["y"])
    assert attributes(softmax, 11) == {"axis": 1}
    assert attributes(softmax, 13) == {"axis": -1}
    # A default is the float32 value an explicit attribute would hold.
    assert attributes(helper.make_node("LeakyRelu", ["x"], ["y"]), 17) == {"alpha": float(np.float32(0.01))}
    assert attributes(helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.5), 17) == {"alpha": 0.5}
    assert attributes(helper.make_node("Pad", ["x"], ["y"], pads=[1, 1]), 7) == {
        "mode": "constant",
        "pads": [1, 1],
        "value": 0.0,
    }
    # No schema default, so absent: required attributes and those whose absence means something.
    assert "to" not in attributes(helper.make_node("Cast", ["x"], ["y"]), 17)
    transposed = attributes(helper.make_node("ConvTranspose", ["x", "w"], ["y"]), 17)
    assert transposed == {"auto_pad": "NOTSET", "group": 1}
    assert attributes(helper.make_node("Squeeze", ["x"], ["y"]), 11) == {}
    assert attributes(helper.make_node("Constant", [], ["y"], value_float=1.0), 17) == {"value_float": 1.0}
    # Attributes newer than the opset are not invented.
    assert attributes(helper.make_node("BatchNormalization", ["x"] * 5, ["y"]), 13) == {
        "epsilon": float(np.float32(1e-5)),
        "momentum": float(np.float32(0.9)),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_without_bounds_before_opset_11_clamps_infinities(backend):
    # Clip-6's bounds default to the largest float32 (its schema), so infinities become finite, as in ONNX Runtime.
    model = make_model([helper.make_node("Clip", ["x"], ["y"])], [tensor("x", [3])], [tensor("y", [3])], opset=9)
    check_against_ort(model, {"x": np.array([-np.inf, 1, np.inf], np.float32)}, backend, rtol=0, atol=0)


def test_bool_tensors_are_uint8():
    nodes = [
        helper.make_node("Greater", ["x", "zero"], ["pos"]),
        helper.make_node("Not", ["pos"], ["neg"]),
        helper.make_node("Cast", ["neg"], ["negf"], to=TensorProto.FLOAT),
        helper.make_node("Where", ["pos", "x", "negf"], ["y"]),
    ]
    model = make_model(
        nodes,
        [tensor("x", [2, 3])],
        [tensor("neg", [2, 3], TensorProto.BOOL), tensor("y", [2, 3])],
        [init("zero", np.float32(0))],
    )
    context = webml.ml.create_context(backend="reference")
    graph = wo.load(model, context)
    assert graph.output_descriptors["neg"].data_type == "uint8"
    check_against_ort(model, {"x": RNG.standard_normal((2, 3)).astype(np.float32)}, "onnxruntime")


# -- dynamic dimensions and folding ---------------------------------------------------------------


def test_unresolved_dynamic_dimension_names_input_and_dimension():
    # Without input_shapes a dynamic model loads as a DynamicGraph; asked for shapes that leave N open, it refuses.
    with pytest.raises(wo.OnnxImportError, match=r"'x'.*dimension 0 \('N'\).*free_dimensions") as info:
        wo.load(small_cnn(), webml.ml.create_context(backend="reference"), input_shapes={})
    assert info.value.unsupported[0][:2] == ("graph input", "x")


def test_unnamed_unknown_dimension_is_an_error():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", [None, 3])], [tensor("y", [None, 3])])
    with pytest.raises(wo.OnnxImportError, match=r"'x'.*dimension 0 is unknown"):
        wo.load(model, webml.ml.create_context(backend="reference"), input_shapes={})


def test_folding_leaves_static_arguments():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "zero", "two"], ["s2"]),
        helper.make_node("ReduceProd", ["s2"], ["rows"], keepdims=1),
        helper.make_node("Concat", ["rows", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"]),
        helper.make_node("ConstantOfShape", ["target_abs"], ["ones"], value=numpy_helper.from_array(np.float32([1]))),
        helper.make_node("Add", ["r", "ones"], ["y"]),
    ]
    inits = [
        init("zero", np.int64([0])),
        init("two", np.int64([2])),
        init("minus1", np.int64([-1])),
        init("target_abs", np.int64([6, 4])),
    ]
    model = make_model(nodes, [tensor("x", [2, 3, 4])], [tensor("y", [6, 4])], inits)
    context = webml.ml.create_context(backend="reference")
    graph = wo.load(model, context)
    assert sorted(node.op for node in graph.ir.nodes) == ["add", "reshape"]
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(context.compute(graph, {"x": x})["y"], x.reshape(6, 4) + 1)


def test_float64_constants_become_float32_with_a_warning():
    nodes = [
        helper.make_node("Cast", ["c"], ["c32"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "c32"], ["y"]),
    ]
    model = make_model(nodes, [tensor("x", [2])], [tensor("y", [2])], [init("c", np.float64([1.5, 2.5]))])
    graph = wo.load(model, webml.ml.create_context(backend="reference"))  # folded: no warning needed
    assert [n.op for n in graph.ir.nodes] == ["add"]
    nodes = [helper.make_node("Add", ["x", "c"], ["y"])]
    model = make_model(
        nodes,
        [tensor("x", [2], TensorProto.DOUBLE)],
        [tensor("y", [2], TensorProto.DOUBLE)],
        [init("c", np.float64([1.5, 2.5]))],
    )
    assert ("graph input", "x", "its type DOUBLE is not a webml data type") in wo.unsupported_operators(model)


# -- the unsupported report ------------------------------------------------------------------------


def unsupported_model():
    nodes = [
        helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="topk"),
        helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"], name="nms"),
        helper.make_node("Resize", ["x4", "", "s"], ["r"], mode="cubic", name="cubic"),
        helper.make_node("Reshape", ["x", "dyn_shape"], ["reshaped"], name="dynamic_reshape"),
        helper.make_node("Relu", ["x"], ["fine"], name="fine"),
    ]
    inputs = [
        tensor("x", [2, 3]),
        tensor("x4", [1, 1, 2, 2]),
        tensor("boxes", [1, 4, 4]),
        tensor("scores", [1, 1, 4]),
        tensor("dyn_shape", [2], TensorProto.INT64),
    ]
    outputs = [helper.make_empty_tensor_value_info(n) for n in ("values", "sel", "r", "reshaped", "fine")]
    return make_model(nodes, inputs, outputs, [init("k", np.int64([1])), init("s", np.float32([1, 1, 2, 2]))], 13)


def test_unsupported_operators_are_all_reported():
    report = wo.unsupported_operators(unsupported_model())
    by_name = {name: (op, reason) for op, name, reason in report}
    assert set(by_name) == {"topk", "nms", "cubic", "dynamic_reshape"}
    assert by_name["topk"] == ("TopK", "operator not supported")
    assert "cubic" in by_name["cubic"][1]
    assert "import time" in by_name["dynamic_reshape"][1]


def test_load_raises_with_the_whole_report():
    with pytest.raises(wo.OnnxImportError) as info:
        wo.load(unsupported_model(), webml.ml.create_context(backend="reference"))
    assert isinstance(info.value, ValueError)
    assert len(info.value.unsupported) == 4
    message = str(info.value)
    assert "TopK 'topk'" in message and "NonMaxSuppression 'nms'" in message


def test_supported_operators_list():
    ops = wo.SUPPORTED_OPERATORS
    assert ops == sorted(ops)
    for op in ("Conv", "LSTM", "GRU", "Resize", "DequantizeLinear", "ScatterND", "Range", "Constant"):
        assert op in ops


def test_unsupported_node_in_a_folded_subgraph_is_fine():
    # NonZero is not supported, but on a constant it is folded at import time.
    nodes = [
        helper.make_node("NonZero", ["c"], ["nz"]),
        helper.make_node("Shape", ["nz"], ["shape"]),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    model = make_model(nodes, [tensor("x", [1, 3])], [tensor("y", None)], [init("c", np.float32([1, 0, 2, 3]))])
    assert wo.unsupported_operators(model) == []
    context = webml.ml.create_context(backend="reference")
    graph = wo.load(model, context)
    assert graph.output_descriptors["y"].shape == (1, 3)


# -- bad files --------------------------------------------------------------------------------------


def test_not_onnx(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("this is not a model")
    with pytest.raises(wo.OnnxImportError, match="not an ONNX model"):
        wo.load(path, webml.ml.create_context(backend="reference"))


def test_truncated(tmp_path):
    data = small_cnn().SerializeToString()
    path = tmp_path / "model.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(wo.OnnxImportError, match="not an ONNX model"):
        wo.load(path, webml.ml.create_context(backend="reference"))
    with pytest.raises(wo.OnnxImportError, match="not an ONNX model"):
        wo.load(data[: len(data) // 3], webml.ml.create_context(backend="reference"))


def test_missing_file(tmp_path):
    with pytest.raises(wo.OnnxImportError, match="no such file"):
        wo.load(tmp_path / "absent.onnx", webml.ml.create_context(backend="reference"))


def test_wrong_argument_types():
    with pytest.raises(TypeError, match="path, bytes or an onnx.ModelProto"):
        wo.load(42, webml.ml.create_context(backend="reference"))
    with pytest.raises(TypeError, match="MLContext"):
        wo.load(small_cnn(), "reference")


def test_external_data(tmp_path):
    weights = RNG.standard_normal((64, 64)).astype(np.float32)
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [tensor("x", [1, 64])],
        [tensor("y", [1, 64])],
        [init("w", weights)],
    )
    path = tmp_path / "model.onnx"
    onnx.save_model(model, path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    context = webml.ml.create_context(backend="reference")
    x = RNG.standard_normal((1, 64)).astype(np.float32)
    want = x.astype(np.float64) @ weights.astype(np.float64)  # float64 truth; the reference rounds it once
    np.testing.assert_allclose(context.compute(wo.load(path, context), {"x": x})["y"], want, rtol=1e-5, atol=1e-6)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(wo.OnnxImportError, match="external data"):
        wo.load(path, context)


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_initializers_are_decoded_once_and_alike(monkeypatch, tmp_path, dynamic):
    """The raw data the model's check reads becomes the initializers' arrays (protobuf copies a bytes
    field at each read): numpy_helper.to_array decodes only what that did not (bfloat16 here), for
    every input shape of a dynamic model, and the results are ONNX Runtime's.  A DynamicGraph keeps
    those arrays instead of the large initializers' raw data: the weights once, not twice."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    h = rng.standard_normal(3).astype(np.float16)
    big = rng.standard_normal((2048, 3)).astype(np.float32)  # above the size shape inference reads
    b = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")
    bits = numpy_helper.to_array(b).view(np.uint32) >> 16
    b_bf16 = helper.make_tensor("b16", TensorProto.BFLOAT16, [3], bits.astype(np.uint16).tobytes(), raw=True)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Cast", ["h"], ["hf"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["b16"], ["bf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["big", "axes"], ["bs"], keepdims=0),
        helper.make_node("Add", ["m", "hf"], ["a"]),
        helper.make_node("Add", ["a", "bf"], ["a2"]),
        helper.make_node("Add", ["a2", "bs"], ["y"]),
    ]
    shape = ["n", 4] if dynamic else [2, 4]
    inits = [numpy_helper.from_array(a, n) for n, a in (("w", w), ("h", h), ("big", big))]
    m = make_model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [shape[0], 3])],
        [*inits, b_bf16, numpy_helper.from_array(np.array([0], np.int64), "axes")],
    )
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    decoded = []
    real = numpy_helper.to_array
    monkeypatch.setattr(numpy_helper, "to_array", lambda t, *a, **k: decoded.append(t.name) or real(t, *a, **k))
    context = webml.ml.create_context(backend="reference")
    graph = wo.load(path, context)
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    for rows in (2, 5) if dynamic else (2,):
        x = rng.standard_normal((rows, 4)).astype(np.float32)
        got = graph(x=x)["y"] if dynamic else context.compute(graph, {"x": x})["y"]
        np.testing.assert_allclose(got, session.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)
    assert decoded == (["b16", "b16"] if dynamic else ["b16"])
    if dynamic:
        kept = {t.name: t for t in graph._model.graph.initializer}
        assert not kept["big"].HasField("raw_data") and kept["w"].HasField("raw_data")


def test_fold_computes_a_repeated_small_node_once_and_hands_out_copies():
    """The fold cache (a transformer repeats its shape arithmetic per layer): same operator, attributes and
    inputs -> one computation; each caller gets its own array; other inputs are computed anew."""
    import onnx.helper as oh

    from webml.onnx.importer import fold

    model = oh.make_model(oh.make_graph([], "g", [], []), opset_imports=[oh.make_opsetid("", 17)])
    cache: dict = {}
    first = oh.make_node("Unsqueeze", ["a", "axes"], ["b"], name="layer0/unsqueeze")
    again = oh.make_node("Unsqueeze", ["c", "axes1"], ["d"], name="layer1/unsqueeze")
    axes = np.array([0], np.int64)
    one = fold(first, [np.array([3, 4], np.int64), axes], model, cache=cache)
    two = fold(again, [np.array([3, 4], np.int64), axes], model, cache=cache)
    assert len(cache) == 1
    np.testing.assert_array_equal(one[0], [[3, 4]])
    np.testing.assert_array_equal(two[0], one[0])
    assert two[0] is not one[0] and not np.shares_memory(two[0], one[0])
    three = fold(again, [np.array([5, 6], np.int64), axes], model, cache=cache)
    np.testing.assert_array_equal(three[0], [[5, 6]])
    assert len(cache) == 2

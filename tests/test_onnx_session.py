"""Dynamic dimensions settled by the arrays of a call (DynamicGraph) and the InferenceSession port of ORT's API."""

from __future__ import annotations

import threading

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import webml
import webml.onnx as wo

RNG = np.random.default_rng(11)
W = RNG.standard_normal((4, 3)).astype(np.float32)


def dense_model(batch="N", features: int | str = 4) -> onnx.ModelProto:
    """y = relu(x @ W) + 1 and z = x * 2, with x [batch, 4]; ``batch`` may be a name or None (unnamed)."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Add", ["r", "one"], ["y"]),
        helper.make_node("Mul", ["x", "two"], ["z"]),
    ]
    inits = [
        numpy_helper.from_array(W, "w"),
        numpy_helper.from_array(np.float32(1), "one"),
        numpy_helper.from_array(np.float32(2), "two"),
    ]
    graph = helper.make_graph(
        nodes,
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, features])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, features]),
        ],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def two_input_model() -> onnx.ModelProto:
    """c = a + b, both [N, S]: the same names in two inputs."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "add",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", "S"]) for n in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", "S"])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def expected(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"y": np.maximum(x @ W, 0) + 1, "z": x * 2}


@pytest.mark.parametrize("backend", ["reference", "onnxruntime"])
@pytest.mark.parametrize("batch", ["N", None])
def test_load_then_call_with_arrays_settles_the_dynamic_dimensions(backend, batch):
    context = webml.ml.create_context(backend=backend)
    model = wo.load(dense_model(batch), context)
    assert isinstance(model, wo.DynamicGraph)
    for rows in (2, 5, 2):
        x = RNG.standard_normal((rows, 4)).astype(np.float32)
        got = model(x=x)
        for name, want in expected(x).items():
            np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-6)
    # One graph per distinct shape, reused: 2 then 5 then 2 again builds two.
    assert model.cached_shapes == [{"x": (5, 4)}, {"x": (2, 4)}]


def test_the_graph_for_a_shape_is_cached_and_is_an_mlgraph_for_the_spec_way():
    context = webml.ml.create_context(backend="reference")
    model = wo.load(dense_model(), context)
    graph = model.graph({"x": (3, 4)})
    assert isinstance(graph, webml.MLGraph)
    assert tuple(graph.input_descriptors["x"].shape) == (3, 4)
    assert model.graph({"x": [3, 4]}) is graph
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(context.compute(graph, {"x": x})["z"], x * 2)


def test_the_cache_is_bounded_least_recently_used_first():
    model = wo.DynamicGraph(dense_model(), webml.ml.create_context(backend="reference"), cache_size=2)
    for rows in (1, 2, 1, 3):
        model.compute({"x": np.ones((rows, 4), np.float32)})
    assert model.cached_shapes == [{"x": (1, 4)}, {"x": (3, 4)}]
    assert wo.session.CACHE_SIZE >= 2
    with pytest.raises(TypeError, match="cache_size"):
        wo.DynamicGraph(dense_model(), webml.ml.create_context(backend="reference"), cache_size=0)


def test_calls_from_several_threads():
    model = wo.load(dense_model(), webml.ml.create_context(backend="reference"))
    errors: list[BaseException] = []

    def work(rows: int) -> None:
        try:
            x = np.full((rows, 4), rows, np.float32)
            np.testing.assert_allclose(model(x=x)["z"], x * 2)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(1 + i % 3,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(s["x"][0] for s in model.cached_shapes) == [1, 2, 3]


def test_free_dimensions_fixing_every_dimension_still_give_an_mlgraph():
    graph = wo.load(dense_model(), webml.ml.create_context(backend="reference"), free_dimensions={"N": 2})
    assert isinstance(graph, webml.MLGraph)
    assert tuple(graph.input_descriptors["x"].shape) == (2, 4)


def test_a_wrong_free_dimension_name_is_an_error_in_python_terms():
    context = webml.ml.create_context(backend="reference")
    with pytest.raises(wo.OnnxImportError, match=r"free_dimensions names 'batch'.*their dynamic dimensions: 'N'"):
        wo.load(dense_model(), context, free_dimensions={"batch": 2})
    with pytest.raises(wo.OnnxImportError, match=r"free_dimensions names 'N'.*none"):
        wo.load(dense_model(batch=2), context, free_dimensions={"N": 2})
    with pytest.raises(wo.OnnxImportError, match="free_dimensions names 'batch'"):
        wo.unsupported_operators(dense_model(), free_dimensions={"batch": 2})


def test_arrays_that_do_not_fit_the_model_are_refused_naming_input_and_dimension():
    model = wo.load(dense_model(), webml.ml.create_context(backend="reference"))
    with pytest.raises(wo.OnnxImportError, match=r"'x'.*dimension 1 is 4 in the model, 5 in the array"):
        model(x=np.zeros((2, 5), np.float32))
    with pytest.raises(wo.OnnxImportError, match=r"'x'.*has rank 2, the array's shape is \[2\]"):
        model(x=np.zeros(2, np.float32))
    with pytest.raises(wo.OnnxImportError, match=r"unknown input\(s\) \['q'\].*the model's inputs: x"):
        model(q=np.zeros((2, 4), np.float32))
    with pytest.raises(wo.OnnxImportError, match=r"missing input\(s\) \['x'\].*the model's inputs: x"):
        model({})
    with pytest.raises(wo.OnnxImportError, match=r"'x'.*dimension 0 \('N'\) is dynamic.*free_dimensions=\{'N'"):
        wo.load(dense_model(), webml.ml.create_context(backend="reference"), input_shapes={})
    fixed = wo.load(dense_model(), webml.ml.create_context(backend="reference"), free_dimensions={"N": 2})
    assert isinstance(fixed, webml.MLGraph)
    partly = wo.DynamicGraph(dense_model(features="F"), webml.ml.create_context(backend="reference"), {"N": 2})
    with pytest.raises(wo.OnnxImportError, match=r"dimension 0 \('N'\) is 2 by free_dimensions, 3 in the array"):
        partly(x=np.zeros((3, 4), np.float32))


def test_one_dimension_name_in_two_inputs_must_agree():
    model = wo.load(two_input_model(), webml.ml.create_context(backend="reference"))
    a, b = np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)
    with pytest.raises(wo.OnnxImportError, match=r"'b'.*dimension 1 \('S'\) is 4, but input 'a' gave 'S' = 3"):
        model(a=a, b=b)
    np.testing.assert_allclose(model(a=a, b=a)["c"], a + a)
    # b's dimensions are all named by a's: still a required input, said so (not a KeyError).
    with pytest.raises(wo.OnnxImportError, match=r"missing input\(s\) \['b'\].*the model's inputs: a, b"):
        model(a=a)
    assert model.cached_shapes == [{"a": (2, 3), "b": (2, 3)}]  # nothing built for the refused call


def test_an_unsupported_model_is_refused_when_loaded_not_at_the_first_call():
    model = dense_model()
    model.graph.node.append(helper.make_node("Det", ["z"], ["d"], name="det1"))
    with pytest.raises(wo.OnnxImportError, match="det1"):
        wo.load(model, webml.ml.create_context(backend="reference"))


def test_unsupported_operators_does_not_count_dynamic_dimensions():
    assert wo.unsupported_operators(dense_model()) == []


# -- InferenceSession


def test_session_lists_inputs_and_outputs_as_onnxruntime_does(tmp_path):
    path = tmp_path / "dense.onnx"
    onnx.save(dense_model(), path)
    ours = wo.InferenceSession(str(path), backend="reference")
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for mine, other in [(ours.get_inputs(), theirs.get_inputs()), (ours.get_outputs(), theirs.get_outputs())]:
        assert [(a.name, a.type, a.shape) for a in mine] == [(a.name, a.type, a.shape) for a in other]
    assert ours.get_inputs()[0].data_type == "float32"


@pytest.mark.parametrize("backend", ["reference", "onnxruntime"])
def test_session_run_returns_a_list_like_onnxruntime(tmp_path, backend):
    path = tmp_path / "dense.onnx"
    onnx.save(dense_model(), path)
    session = wo.InferenceSession(path, backend=backend)
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    name = session.get_inputs()[0].name
    got = session.run(None, {name: x})
    want = theirs.run(None, {name: x})
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    (z,) = session.run(["z"], {name: x})
    np.testing.assert_allclose(z, x * 2)
    y, z = session.run(["y", "z"], {name: x[:1]})
    assert y.shape == (1, 3) and z.shape == (1, 4)


def test_session_errors_name_what_is_wrong():
    context = webml.ml.create_context(backend="reference")
    session = wo.InferenceSession(dense_model(), context=context)
    assert session.context is context
    with pytest.raises(wo.OnnxImportError, match=r"unknown output name\(s\) \['w'\].*\['y', 'z'\]"):
        session.run(["w"], {"x": np.zeros((1, 4), np.float32)})
    with pytest.raises(TypeError, match="backend="):
        wo.InferenceSession(dense_model(), providers=["CPUExecutionProvider"])
    with pytest.raises(TypeError, match="not both"):
        wo.InferenceSession(dense_model(), backend="reference", context=context)
    with pytest.raises(TypeError, match="dict of arrays"):
        session.run(None, [np.zeros((1, 4), np.float32)])


def test_shapes_that_are_not_sizes_are_refused_naming_the_input():
    model = wo.load(dense_model(), webml.ml.create_context(backend="reference"))
    for shapes, match in (
        ({"x": np.ones((2, 4))}, "shape of input 'x' must be a sequence of sizes"),
        ({"x": (2, -1)}, "shape of input 'x'"),
        ({"x": (2.0, 4)}, "shape of input 'x'"),
        ([("x", (2, 4))], "shapes must be a dict"),
    ):
        with pytest.raises(TypeError, match=match):
            model.graph(shapes)
    with pytest.raises(TypeError, match="input 'x' is not an array"):
        model({"x": [[1, 2, 3, 4], [1]]})
    assert model.cached_shapes == []
    # load's input_shapes go through the same check (int() alone truncated 2.5 and failed on an array).
    context = webml.ml.create_context(backend="reference")
    for shapes, match in (
        ({"x": np.ones((2, 4))}, "webml.onnx.load: the shape of input 'x' must be a sequence of sizes"),
        ({"x": (2.5, 4)}, "shape of input 'x'"),
        ({"x": "ab"}, "shape of input 'x'"),
        ([("x", (2, 4))], "input_shapes must be a dict"),
    ):
        with pytest.raises(TypeError, match=match):
            wo.load(dense_model(), context, input_shapes=shapes)


def test_a_dynamic_model_gives_freed_memory_back_after_each_build_not_before(monkeypatch):
    """Trimming the heap before the first build would make the engine fault in fresh pages for what
    it computes at build (an int8 model's dequantized weights); after the build it frees them."""
    calls: list[str] = []
    monkeypatch.setattr(wo, "return_freed_memory", lambda: calls.append("load"))
    monkeypatch.setattr(wo.session, "return_freed_memory", lambda: calls.append("build"))
    model = wo.load(dense_model(), webml.ml.create_context(backend="reference"))
    assert calls == []
    for rows in (2, 2, 3):
        model(x=np.ones((rows, 4), np.float32))
    assert calls == ["build", "build"]  # one per graph built; the cached one builds nothing
    wo.load(dense_model(batch=2), webml.ml.create_context(backend="reference"))
    assert calls == ["build", "build", "load"]  # a fixed-shape model is built by load itself

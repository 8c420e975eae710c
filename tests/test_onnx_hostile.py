"""Hostile ONNX models (issue 9, section 3): each is refused with a clear OnnxImportError naming the
node, never a crash, a blow-up or an internal exception.  Anything that could crash or exhaust the
process runs in a child process with an address-space limit."""

from __future__ import annotations

import multiprocessing
import os
import resource

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import webml
import webml.onnx as wo
from webml.cli import main as cli_main


def tensor(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def model(nodes, inputs, outputs, initializers=(), opset=18, extra_opsets=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])


def _child(data, conn, compute=None, backend="reference"):
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
    try:
        context = webml.ml.create_context(backend=backend)
        graph = wo.load(data, context)
        if compute is not None:
            context.compute(graph, compute)
            conn.send(("computed", ""))
            return
        conn.send(("loaded", ""))
    except wo.OnnxImportError as exc:
        conn.send(("OnnxImportError", str(exc)))
    except BaseException as exc:  # reported to the test
        conn.send((type(exc).__name__, str(exc)))


def load_in_child(m: onnx.ModelProto, compute=None, backend="reference") -> tuple[str, str]:
    """(outcome, message) of loading ``m`` (and computing it on ``compute``) in a child process
    limited to 3 GiB of address space."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_child, args=(m.SerializeToString(), child, compute, backend))
    p.start()
    ok = parent.poll(120)
    result = parent.recv() if ok else ("hang", "")
    p.join(10)
    if p.is_alive():
        p.kill()
    if not ok:
        return ("crash" if p.exitcode and p.exitcode < 0 else "hang", str(p.exitcode))
    return result


# -- the segfaults of shape inference --------------------------------------------------------------


ML = helper.make_opsetid("ai.onnx.ml", 4)
SEGFAULTS = {
    "regex_empty_input": model(
        [helper.make_node("RegexFullMatch", [""], ["y"], pattern="a")],
        [tensor("x", [1], TensorProto.STRING)],
        [tensor("y", [1], TensorProto.BOOL)],
        opset=20,
    ),
    "label_encoder_undefined_input": model(
        [helper.make_node("LabelEncoder", ["zz"], ["y"], domain="ai.onnx.ml", keys_int64s=[1], values_int64s=[2])],
        [tensor("x", [1], TensorProto.INT64)],
        [tensor("y", [1], TensorProto.INT64)],
        opset=20,
        extra_opsets=[ML],
    ),
    "layer_norm_axis_2_31": model(
        [helper.make_node("LayerNormalization", ["x", "s"], ["y", "m", "v"], axis=2**31)],
        [tensor("x", [2, 3, 4]), tensor("s", [4])],
        [tensor("y", [2, 3, 4])],
        opset=17,
    ),
}


@pytest.mark.parametrize("name", sorted(SEGFAULTS))
def test_shape_inference_crashers_are_refused(name):
    outcome, message = load_in_child(SEGFAULTS[name])
    assert outcome == "OnnxImportError", (outcome, message)
    op = SEGFAULTS[name].graph.node[0].op_type
    assert f"{op} node" in message


# -- memory blow-ups ---------------------------------------------------------------------------------


def test_data_propagation_of_a_huge_1d_mul_is_not_run():
    m = model([helper.make_node("Mul", ["x", "x"], ["y"])], [tensor("x", [2**28])], [tensor("y", [2**28])])
    outcome, message = load_in_child(m)
    assert outcome in ("loaded", "OnnxImportError"), (outcome, message)


def test_constant_of_shape_is_refused_before_it_is_computed():
    shape = numpy_helper.from_array(np.array([2**30], np.int64), "s")
    m = model([helper.make_node("ConstantOfShape", ["s"], ["y"])], [], [tensor("y", [2**30])], [shape])
    outcome, message = load_in_child(m)
    assert outcome == "OnnxImportError" and "ConstantOfShape node 'y'" in message, (outcome, message)
    assert "limit" in message


def test_split_with_a_huge_num_outputs():
    m = model(
        [helper.make_node("Split", ["x"], ["a", "b"], axis=0, num_outputs=2**62)],
        [tensor("x", [4])],
        [tensor("a", [2]), tensor("b", [2])],
    )
    outcome, message = load_in_child(m)
    assert outcome == "OnnxImportError" and "num_outputs" in message and "Split node" in message


@pytest.mark.parametrize("op", ["DepthToSpace", "SpaceToDepth"])
def test_a_zero_blocksize_is_refused(op):
    m = model([helper.make_node(op, ["x"], ["y"], blocksize=0)], [tensor("x", [1, 8, 2, 2])], [tensor("y", None)])
    outcome, message = load_in_child(m)
    assert outcome == "OnnxImportError" and "blocksize=0 must be a positive integer" in message, (outcome, message)


@pytest.mark.parametrize("backend", ["reference", "onnxruntime"])
def test_a_huge_pooling_window_loads_and_computes_in_bounded_memory(backend):
    # Found by the fuzzer: kernel_shape [2**31, 2] with SAME padding on a 32x32 input made both backends
    # allocate (a list of every tap; 24 GB on onnxruntime) or loop over every tap.
    m = model(
        [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2**31, 2], auto_pad="SAME_LOWER")],
        [tensor("x", [1, 3, 32, 32])],
        [tensor("y", [1, 3, 32, 32])],
    )
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 32)).astype(np.float32)
    outcome, message = load_in_child(m, compute={"x": x}, backend=backend)
    assert outcome == "computed", (outcome, message)


def test_a_cast_to_an_unknown_type_is_refused():
    m = model([helper.make_node("Cast", ["x"], ["y"], to=2**31 - 1)], [tensor("x", [2])], [tensor("y", None)])
    outcome, message = load_in_child(m)
    assert outcome == "OnnxImportError" and "to=2147483647 is not an ONNX element type" in message, (outcome, message)


def test_a_pool_whose_kernel_does_not_fit_the_rank_is_refused():
    m = model(
        [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2])], [tensor("x", [1, 1, 4, 4])], [tensor("y", None)]
    )
    outcome, message = load_in_child(m)
    assert outcome == "OnnxImportError" and "kernel_shape has 1 values" in message, (outcome, message)


def test_static_inputs_of_the_wrong_types_are_refused():
    a = numpy_helper.from_array(np.array([1, 2], np.int64), "a")
    b = numpy_helper.from_array(np.array([1, 2], np.float32), "b")
    m = model([helper.make_node("Mul", ["a", "b"], ["y"])], [], [tensor("y", None)], [a, b])
    outcome, message = load_in_child(m)
    assert outcome == "OnnxImportError" and "Mul" in message, (outcome, message)


def _rank_cases():
    x4 = tensor("x", [1, 2, 4, 4])
    w3 = numpy_helper.from_array(np.ones((2, 2, 3), np.float32), "w")
    w4 = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
    idx = numpy_helper.from_array(np.zeros((1, 5), np.int64), "i")
    upd = numpy_helper.from_array(np.zeros((1,), np.float32), "u")
    lstm_w = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    lstm_r = numpy_helper.from_array(np.ones((1, 4, 1), np.float32), "r")
    xs = numpy_helper.from_array(np.ones((1, 2, 3, 3), np.float32), "xs")
    return {
        "ConvTranspose weight of another rank": (
            model([helper.make_node("ConvTranspose", ["x", "w"], ["y"])], [x4], [tensor("y", None)], [w3]),
            "the weight has rank 3",
        ),
        "ScatterND indices deeper than the data": (
            model([helper.make_node("ScatterND", ["x", "i", "u"], ["y"])], [x4], [tensor("y", None)], [idx, upd]),
            "do not index the rank-4 data",
        ),
        "LSTM weight of rank 2": (
            model(
                [helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=1)],
                [tensor("x", [1, 1, 2])],
                [tensor("y", None)],
                [lstm_w, lstm_r],
            ),
            "input W has rank 2, not 3",
        ),
        "folded ConvTranspose whose weight does not fit": (
            model([helper.make_node("ConvTranspose", ["xs", "w"], ["y"])], [], [tensor("y", None)], [xs, w3]),
            "do not fit the operator",
        ),
        "AveragePool with a zero stride": (
            model(
                [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[0, 1])],
                [x4],
                [tensor("y", None)],
            ),
            "strides=[0, 1] must be positive",
        ),
        "Split whose num_outputs disagrees with its outputs": (
            model(
                [helper.make_node("Split", ["x"], ["a", "b", "c", "d"], axis=1, num_outputs=3)],
                [x4],
                [tensor(n, None) for n in "abcd"],
            ),
            "num_outputs=3 but the node has 4 outputs",
        ),
        "folded GatherND with an index out of range": (
            model(
                [helper.make_node("GatherND", ["xs", "i"], ["y"])],
                [],
                [tensor("y", None)],
                [xs, numpy_helper.from_array(np.array([[0, 5]], np.int64), "i")],
            ),
            "its static inputs cannot be computed",
        ),
        "ConvTranspose strides of another length": (
            model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[1])], [x4], [tensor("y", None)], [w4]),
            "strides has 1 values",
        ),
        "DepthToSpace of a rank-3 input": (
            model(
                [helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2)],
                [tensor("x", [8, 2, 3])],
                [tensor("y", None)],
            ),
            "the input has rank 3, not 4",
        ),
    }


@pytest.mark.parametrize("name", sorted(_rank_cases()))
def test_operands_and_attributes_of_the_wrong_rank_are_refused(name):
    m, expected = _rank_cases()[name]
    outcome, message = load_in_child(m)
    assert outcome == "OnnxImportError" and expected in message, (outcome, message)


# -- schema checks (the internal exceptions) ------------------------------------------------------------


def _context():
    return webml.ml.create_context(backend="reference")


@pytest.mark.parametrize(
    "m, expected",
    [
        (
            model([helper.make_node("Add", ["x", ""], ["y"])], [tensor("x", [2])], [tensor("y", [2])]),
            "Add node 'y': input 1 (B) is required but its name is empty",
        ),
        (
            model([helper.make_node("Concat", ["x", "x"], ["y"])], [tensor("x", [2])], [tensor("y", [4])]),
            "Concat node 'y': the required attribute 'axis' is missing",
        ),
        (
            model([helper.make_node("Gemm", ["x"], ["y"])], [tensor("x", [2, 2])], [tensor("y", [2, 2])]),
            "Gemm node 'y': 1 input(s), but Gemm-13 takes 2 to 3",
        ),
        (
            model([helper.make_node("Relu", ["x"], ["y"])], [tensor("", [2])], [tensor("y", [2])]),
            "graph input '': it has no name",
        ),
        (
            model([helper.make_node("Softmax", ["x"], ["y"], axis="a")], [tensor("x", [2])], [tensor("y", [2])]),
            "Softmax node 'y': attribute 'axis' must be INT, not STRING",
        ),
    ],
)
def test_nodes_are_checked_against_their_schema(m, expected):
    with pytest.raises(wo.OnnxImportError) as info:
        wo.load(m, _context())
    assert expected in str(info.value)


def test_elem_type_99_is_refused():
    m = model([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", [2])], [tensor("y", [2])])
    m.graph.value_info.append(tensor("z", [2]))
    m.graph.value_info[0].type.tensor_type.elem_type = 99
    with pytest.raises(wo.OnnxImportError, match="value_info 'z': its element type 99 is not an ONNX type"):
        wo.load(m, _context())


# -- out-of-range axes: refused as ONNX Runtime refuses them ------------------------------------------------


def _axis_cases():
    x = [tensor("x", [2, 3, 4])]
    y = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    return {
        "Softmax axis=5": model([helper.make_node("Softmax", ["x"], ["y"], axis=5)], x, y),
        "Concat axis=3": model([helper.make_node("Concat", ["x", "x"], ["y"], axis=3)], x, y),
        "Gather axis=-4": model(
            [helper.make_node("Gather", ["x", "i"], ["y"], axis=-4)],
            x,
            y,
            [numpy_helper.from_array(np.array([0], np.int64), "i")],
        ),
        "ReduceSum axes=[3]": model(
            [helper.make_node("ReduceSum", ["x", "a"], ["y"])], x, y, [numpy_helper.from_array(np.array([3]), "a")]
        ),
        "CumSum axis=3": model(
            [helper.make_node("CumSum", ["x", "a"], ["y"])],
            x,
            y,
            [numpy_helper.from_array(np.array(3, np.int64), "a")],
        ),
        "LayerNormalization axis=100": model(
            [helper.make_node("LayerNormalization", ["x", "s"], ["y"], axis=100)],
            x,
            y,
            [numpy_helper.from_array(np.ones(4, np.float32), "s")],
        ),
    }


AXIS_CASES = _axis_cases()


@pytest.mark.parametrize("name", sorted(AXIS_CASES))
def test_out_of_range_axes_are_refused_like_onnxruntime(name):
    m = AXIS_CASES[name]
    op = m.graph.node[0].op_type
    with pytest.raises(Exception):  # noqa: B017 - the independent truth: ONNX Runtime refuses the model
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        session.run(None, {"x": np.zeros((2, 3, 4), np.float32)})
    with pytest.raises(wo.OnnxImportError) as info:
        wo.load(m, _context())
    assert f"{op} node 'y'" in str(info.value) and "range" in str(info.value)


def test_in_range_negative_axes_still_work():
    x = [tensor("x", [2, 3, 4])]
    m = model([helper.make_node("Softmax", ["x"], ["y"], axis=-3)], x, [tensor("y", [2, 3, 4])])
    data = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    context = _context()
    got = context.compute(wo.load(m, context), {"x": data})["y"]
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": data})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# -- external data ------------------------------------------------------------------------------------------


def _external_model(location: str, length: int | None = None) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entries = {"location": location, **({"length": str(length)} if length is not None else {})}
    for key, value in entries.items():
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    return model([helper.make_node("Add", ["x", "w"], ["y"])], [tensor("x", [4])], [tensor("y", [4])], [w])


def test_external_data_of_bytes_and_protos_needs_base_dir(tmp_path, monkeypatch):
    (tmp_path / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    monkeypatch.chdir(tmp_path)  # the old behaviour read from the current directory
    m = _external_model("w.bin")
    for source in (m, m.SerializeToString()):
        with pytest.raises(wo.OnnxImportError, match="only read from a folder named by base_dir"):
            wo.load(source, _context())
    context = _context()
    graph = wo.load(m.SerializeToString(), context, base_dir=tmp_path)
    y = context.compute(graph, {"x": np.ones(4, np.float32)})["y"]
    np.testing.assert_array_equal(y, np.arange(4, dtype=np.float32) + 1)
    assert m.graph.initializer[0].data_location == TensorProto.EXTERNAL  # the caller's proto is unchanged


def test_external_data_cannot_leave_base_dir(tmp_path):
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"\x01" * 16)
    os.symlink(outside, inside / "link")
    for location in ("../outside/secret.bin", "link/secret.bin", str(outside / "secret.bin")):
        with pytest.raises(wo.OnnxImportError, match="outside the folder|not a relative file name"):
            wo.load(_external_model(location), _context(), base_dir=inside)
    # A model file beside its data is read relative to its folder, with the same rule.
    path = inside / "model.onnx"
    path.write_bytes(_external_model("link/secret.bin").SerializeToString())
    with pytest.raises(wo.OnnxImportError, match="outside the folder"):
        wo.load(path, _context())


def test_external_data_length_and_offset_are_checked(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\x00" * 8)
    with pytest.raises(wo.OnnxImportError, match="do not fit"):
        wo.load(_external_model("w.bin"), _context(), base_dir=tmp_path)  # 16 bytes declared, 8 in the file
    with pytest.raises(wo.OnnxImportError, match="do not fit"):
        wo.load(_external_model("w.bin", length=2**40), _context(), base_dir=tmp_path)


# -- webml info on files that are not models ------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\x08\x01"])
def test_info_refuses_empty_and_tiny_files(tmp_path, capsys, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    assert cli_main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an ONNX model" in err and "ir_version 0" not in err


def test_info_on_elem_type_99(tmp_path, capsys):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", [2])], [tensor("y", [2])])
    m.graph.input[0].type.tensor_type.elem_type = 99
    path = tmp_path / "model.onnx"
    path.write_bytes(m.SerializeToString())
    assert cli_main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert "element type 99" in err and "KeyError" not in err


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("import webml, webml.onnx; webml.onnx.load(path, webml.ml.create_context())", "OnnxImportError"),
        ("from webml.zoo.torch_checkpoint import load_state_dict; load_state_dict(path)", "CheckpointError"),
    ],
)
def test_a_fifo_named_like_a_model_is_refused_without_blocking(tmp_path, call, error):
    import subprocess
    import sys

    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    script = f"path = {str(fifo)!r}\ntry:\n    {call}\nexcept Exception as exc:\n    print(type(exc).__name__, exc)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith(error) and "named pipe (FIFO)" in done.stdout, done.stdout + done.stderr


def test_an_unknown_field_cannot_pass_short_raw_data_off_as_complete(tmp_path):
    """Four floats declared, 13 bytes of raw data and a 3-byte unknown field: the tensor's other
    fields and 16 bytes, as four floats would take, yet the data is short."""
    short = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    short.raw_data = short.raw_data[:13]
    parsed = TensorProto()
    parsed.ParseFromString(short.SerializeToString() + b"\xa8\x06\x05")  # field 101, varint 5
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [tensor("x", [4])], [tensor("y", [4])], [parsed])
    path = tmp_path / "short.onnx"
    path.write_bytes(m.SerializeToString())
    with pytest.raises(wo.OnnxImportError, match="declare 4 value.*not 13"):
        wo.load(path, webml.ml.create_context(backend="reference"))

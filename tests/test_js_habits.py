"""Code written the WebNN JavaScript way: accepted (the dict forms) or told the Python spelling.

README, "From WebNN JavaScript", is the table these tests hold the API to.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import webml
from webml.api.spelling import PythonSpelling, add_javascript_names
from webml.backends import DEFAULT_BACKEND
from webml.train import SGD, Trainer

NHWC = {"dataType": "float32", "shape": [1, 4, 4, 2]}
rng = np.random.default_rng(7)
FILTER = rng.standard_normal((3, 3, 3, 2), np.float32)


@pytest.fixture
def context():
    return webml.ml.create_context(backend="reference")


def conv_inputs(builder):
    x = builder.input("x", NHWC)
    w = builder.constant({"dataType": "float32", "shape": [3, 3, 3, 2]}, FILTER)
    return x, w


def run(context, builder, y, x):
    graph = builder.build({"y": y})
    return context.compute(graph, {"x": x})["y"]


# -- an options dict as the last positional argument ----------------------------------


def test_options_dict_is_the_keyword_form(context):
    x_data = rng.standard_normal((1, 4, 4, 2), np.float32)
    results = []
    for form in ("dict", "keywords"):
        b = webml.MLGraphBuilder(context)
        x, w = conv_inputs(b)
        bias = b.constant({"dataType": "float32", "shape": [3]}, np.array([1, 2, 3], np.float32))
        if form == "dict":
            opts = {"padding": [1, 1, 1, 1], "inputLayout": "nhwc", "filterLayout": "ohwi", "bias": bias}
            y = b.conv2d(x, w, opts)
        else:
            y = b.conv2d(x, w, padding=[1, 1, 1, 1], input_layout="nhwc", filter_layout="ohwi", bias=bias)
        assert y.shape == [1, 4, 4, 3]
        results.append(run(context, b, y, x_data))
    np.testing.assert_array_equal(*results)


def test_options_dict_on_operators_with_more_positional_arguments(context):
    b = webml.MLGraphBuilder(context)
    x = b.input("x", {"dataType": "float32", "shape": [2, 6]})
    parts = b.split(x, 3, {"axis": 1})
    assert [p.shape for p in parts] == [[2, 2]] * 3
    assert b.reduce_sum(x, {"axes": [1], "keepDimensions": True}).shape == [2, 1]
    clamped = b.clamp(x, {"minValue": 0.0, "maxValue": 1.0})
    out = run(context, b, clamped, np.linspace(-2, 2, 12, dtype=np.float32).reshape(2, 6))
    assert out.min() == 0.0 and out.max() == 1.0


def test_options_dict_label_and_python_keys(context):
    b = webml.MLGraphBuilder(context)
    x, w = conv_inputs(b)
    # The label member is the spec's MLOperatorOptions.label; the Python names are read too.
    with pytest.raises(TypeError, match=r"\[first conv\] conv2d"):
        b.conv2d(x, w, {"label": "first conv", "input_layout": "nchw"})
    with pytest.raises(TypeError, match=r"\[kw\] conv2d"):
        b.conv2d(x, w, {"inputLayout": "nchw"}, label="kw")


def test_options_dict_ignores_unknown_members_as_webidl_does(context):
    b = webml.MLGraphBuilder(context)
    x, w = conv_inputs(b)
    y = b.conv2d(x, w, {"inputLayout": "nhwc", "filterLayout": "ohwi", "notAnOption": 3, 7: "x"})
    assert y.shape == [1, 2, 2, 3]


def test_options_dict_and_keywords_must_not_overlap(context):
    b = webml.MLGraphBuilder(context)
    x, w = conv_inputs(b)
    with pytest.raises(TypeError, match="conv2d: padding given both in the options dict and as keyword"):
        b.conv2d(x, w, {"padding": [1, 1, 1, 1]}, padding=[0, 0, 0, 0])
    with pytest.raises(TypeError, match="conv2d: label given both"):
        b.conv2d(x, w, {"label": "a"}, label="b")
    with pytest.raises(TypeError, match="the options give input_layout twice, as 'inputLayout' and 'input_layout'"):
        b.conv2d(x, w, {"inputLayout": "nhwc", "input_layout": "nhwc"})
    with pytest.raises(TypeError, match="label must be a string"):
        b.conv2d(x, w, {"label": 3})
    assert b.build({"y": b.relu(x)})  # the failed calls left nothing behind


# -- camelCase keywords, methods and attributes -----------------------------------------


def test_camel_case_keyword_names_the_python_spelling(context):
    b = webml.MLGraphBuilder(context)
    x, w = conv_inputs(b)
    hint = r"conv2d: unexpected keyword argument 'inputLayout' \(did you mean input_layout=\?\)"
    with pytest.raises(TypeError, match=hint):
        b.conv2d(x, w, inputLayout="nhwc")
    with pytest.raises(TypeError, match=r"\[c\] reduceSum: ") as info:
        b.reduce_sum(x, keepDimensions=True, label="c")
    assert "did you mean keep_dimensions=?" in str(info.value)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'padd' \(it takes .*padding.*strides"):
        b.conv2d(x, w, padd=[0, 0, 0, 0])
    with pytest.raises(TypeError, match=r"add: unexpected keyword argument 'alpha' \(it takes label\)"):
        b.add(x, x, alpha=1.0)


@pytest.mark.parametrize(
    ("make", "spec", "python"),
    [
        (lambda ctx: webml.ml, "createContext", "create_context"),
        (lambda ctx: ctx, "createTensor", "create_tensor"),
        (lambda ctx: ctx, "createConstantTensor", "create_constant_tensor"),
        (lambda ctx: ctx, "writeTensor", "write_tensor"),
        (lambda ctx: ctx, "opSupportLimits", "op_support_limits"),
        (lambda ctx: ctx, "powerPreference", "power_preference"),
        (lambda ctx: webml.MLGraphBuilder(ctx), "averagePool2d", "average_pool2d"),
        (lambda ctx: webml.MLGraphBuilder(ctx), "gatherND", "gather_nd"),
        (lambda ctx: webml.MLGraphBuilder(ctx).input("x", NHWC), "dataType", "data_type"),
        (lambda ctx: ctx.create_tensor(NHWC), "dataType", "data_type"),
    ],
)
def test_camel_case_attribute_names_the_python_spelling(context, make, spec, python):
    obj = make(context)
    assert hasattr(obj, python)
    with pytest.raises(AttributeError, match=rf"has no attribute '{spec}' \(did you mean {python}\?"):
        getattr(obj, spec)
    assert not hasattr(obj, spec)


def test_other_missing_attributes_are_plain(context):
    b = webml.MLGraphBuilder(context)
    with pytest.raises(AttributeError, match=r"^'MLGraphBuilder' object has no attribute 'fooBar'$"):
        b.fooBar  # noqa: B018
    assert getattr(b, "__deepcopy__", None) is None
    operand = b.input("x", NHWC)
    assert not hasattr(operand, "__dict__")  # MLOperand keeps its slots
    with pytest.raises(AttributeError, match="'_nope'"):
        operand._nope  # noqa: B018
    assert copy.copy(webml.ml) is not None


def test_an_attribute_error_inside_a_property_is_not_hidden():
    class Thing(PythonSpelling):
        @property
        def broken(self):
            return self.missing_inside

        def data_type(self):
            return "x"

    add_javascript_names(Thing)
    with pytest.raises(AttributeError, match="'missing_inside'"):
        Thing().broken  # noqa: B018
    with pytest.raises(AttributeError, match="did you mean data_type"):
        Thing().dataType  # noqa: B018


@pytest.mark.parametrize("cls", [webml.ML, webml.MLContext, webml.MLGraph, webml.MLGraphBuilder, webml.MLOperand])
def test_normal_access_stays_fast_and_dir_stays_python(context, cls):
    # No __getattr__: with one, CPython cannot specialize these classes' attribute lookups.
    assert not hasattr(cls, "__getattr__")
    b = webml.MLGraphBuilder(context)
    objects = {webml.ML: webml.ml, webml.MLContext: context, webml.MLGraphBuilder: b}
    obj = objects.get(cls) or b.input("x", NHWC)
    if isinstance(obj, cls):
        assert dir(obj) and not [n for n in dir(obj) if not n.startswith("_") and not n.islower()]


def test_descriptor_dicts_keep_the_spec_keys(context):
    b = webml.MLGraphBuilder(context)
    with pytest.raises(TypeError, match=r"missing the required member 'dataType' \(it has 'data_type'"):
        b.input("x", {"data_type": "float32", "shape": [2]})


# -- createContext ---------------------------------------------------------------------------


def test_create_context_takes_an_ml_context_options_dict():
    ctx = webml.ml.create_context({"powerPreference": "low-power", "accelerated": False}, backend="reference")
    assert ctx.power_preference == "low-power" and ctx.accelerated is False
    assert ctx.backend == "reference"
    assert webml.ml.create_context({"deviceType": "cpu"}).accelerated is False  # an earlier draft's member
    ignored = webml.ml.create_context({"powerPreference": "high-performance", "gpuDevice": object(), "backend": "x"})
    assert ignored.power_preference == "high-performance" and ignored.backend == DEFAULT_BACKEND
    assert webml.ml.create_context({}).power_preference == "default"
    with pytest.raises(TypeError, match="power_preference must be one of"):
        webml.ml.create_context({"powerPreference": "fast"})
    with pytest.raises(TypeError, match="power_preference given both"):
        webml.ml.create_context({"powerPreference": "low-power"}, power_preference="default")
    with pytest.raises(TypeError, match=r"MLContextOptions dict .* \(pass the backend as backend='reference'\)"):
        webml.ml.create_context("reference")


@pytest.mark.parametrize(
    ("backend", "options", "fragments"),
    [
        (None, {"powerPreference": "low-power"}, ["'powerPreference'", "did you mean power_preference=?"]),
        ("onnxruntime", {"threads": 2}, ["'threads'", "intra_op_threads", "graph_optimization_level", "accelerated"]),
        ("onnxruntime", {"intraOpThreads": 2}, ["did you mean intra_op_threads=?"]),
        ("reference", {"intra_op_threads": 2}, ["reference backend", "'intra_op_threads'", "float64"]),
    ],
)
def test_unknown_context_option_names_it_and_the_valid_ones(backend, options, fragments):
    with pytest.raises(TypeError) as info:
        webml.ml.create_context(backend=backend, **options)
    message = str(info.value)
    assert message.startswith("createContext")
    for fragment in fragments:
        assert fragment in message
    assert "__init__" not in message and "OnnxRuntimeBackend" not in message


# -- lists and float64 arrays: one rule everywhere ------------------------------------------


F32 = {"dataType": "float32", "shape": [2, 2]}
LIST = [[0.1, 2], [3, -4.5]]


def _constant_value(context, data, desc=F32):
    b = webml.MLGraphBuilder(context)
    graph = b.build({"y": b.identity(b.constant(desc, data))})
    return context.compute(graph, {})["y"]


def _written_value(context, data, desc=F32):
    tensor = context.create_tensor({**desc, "readable": True, "writable": True})
    context.write_tensor(tensor, data)
    return context.read_tensor(tensor)


def _constant_tensor_value(context, data, desc=F32):
    b = webml.MLGraphBuilder(context)
    graph = b.build({"y": b.identity(b.constant(context.create_constant_tensor(desc, data)))})
    return context.compute(graph, {})["y"]


def _computed_value(context, data, desc=F32):
    b = webml.MLGraphBuilder(context)
    graph = b.build({"y": b.identity(b.input("x", desc))})
    return context.compute(graph, {"x": data})["y"]


WAYS = [_constant_value, _written_value, _constant_tensor_value, _computed_value]


@pytest.mark.parametrize("way", WAYS)
def test_lists_are_cast_to_the_data_type(context, way):
    expected = np.array(LIST, np.float32)
    got = way(context, LIST)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    # Integer types: the spec's cast of a number, as constant(data_type, number) does.
    ints = {"dataType": "int32", "shape": [5]}
    values = [1.5, 2.5, -1e20, float("nan"), 2**40]
    scalars = [webml.MLGraphBuilder(context).constant("int32", v) for v in values]
    assert scalars  # the scalar form takes each of them
    np.testing.assert_array_equal(way(context, values, ints), [2, 2, -(2**31), 0, 2**31 - 1])


@pytest.mark.parametrize("way", WAYS)
def test_arrays_of_another_dtype_are_refused_with_the_conversion(context, way):
    with pytest.raises(TypeError, match=r"has dtype float64.*convert it first with \.astype\(numpy\.float32\)"):
        way(context, np.array(LIST))
    with pytest.raises(TypeError, match="has dtype int64"):
        way(context, np.array([[1, 2], [3, 4]]))


@pytest.mark.parametrize("way", WAYS)
def test_what_is_not_numbers_is_a_type_error(context, way):
    for bad in ([[1, 2], [3]], ["a", "b", "c", "d"], [[None, 1], [2, 3]]):
        with pytest.raises(TypeError, match="must be a NumPy array or a \\(nested\\) list of numbers"):
            way(context, bad)


def test_lists_must_hold_the_element_count(context):
    with pytest.raises(TypeError, match="3 elements .* needs 4"):
        _constant_value(context, [1, 2, 3])
    with pytest.raises(TypeError, match=r"has shape \[4\], the graph expects \[2, 2\]"):
        _computed_value(context, [1, 2, 3, 4])  # compute takes the input's shape, as before


def linear_trainer(context):
    def forward(b, params, x):
        return b.add(b.matmul(x, params["w"]), params["b"])

    params = {"w": [[0.0]], "b": [0.0]}  # lists: the same rule as x
    return Trainer(context, forward, params, SGD(0.1), loss="mse", batch_size=4, input_shape=[1])


def test_trainer_follows_the_same_rule(context):
    trainer = linear_trainer(context)
    x = [[v] for v in np.linspace(-1, 1, 8).tolist()]
    history = trainer.fit(x, [[2 * v[0] - 1] for v in x], epochs=2, progress=False)
    assert len(history["loss"]) == 2
    assert trainer.predict([[0.5]]).dtype == np.float32
    with pytest.raises(TypeError, match=r"fit: x has dtype float64.*\.astype\(numpy\.float32\)"):
        trainer.fit(np.array(x), np.array(x, np.float32), progress=False)
    with pytest.raises(TypeError, match=r"fit: y has dtype float64"):
        trainer.fit(np.array(x, np.float32), np.array(x), progress=False)
    with pytest.raises(TypeError, match=r"predict: x has dtype float64"):
        trainer.predict(np.zeros((1, 1)))
    with pytest.raises(TypeError, match=r"parameter 'w' has dtype float64"):
        Trainer(context, lambda b, p, x: x, {"w": np.zeros((1, 1))}, SGD(0.1), loss="mse", input_shape=[1])
    with pytest.raises(TypeError, match="must be a NumPy array or a \\(nested\\) list of numbers"):
        trainer.fit([[1.0], [2.0, 3.0]], [[1.0], [2.0]], progress=False)

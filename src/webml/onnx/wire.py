"""Large initializers' raw data taken out of a model file's bytes before protobuf parses them.

Parsing a ModelProto copies every ``raw_data`` field into the message, and
reading the field copies it again (a protobuf ``bytes`` field gives a new
Python ``bytes``): for a weight-heavy model most of the loading time.  So
before parsing, :func:`lift` walks the protobuf wire format of the model
(``ModelProto.graph`` -> ``GraphProto.initializer`` -> ``TensorProto.raw_data``,
fields 7, 5 and 9 of onnx.proto) and gives back the bytes of the same model
without the large ``raw_data`` fields, plus where each one lies in the file:
the caller parses the small model and reads the weights where they are (an
array over the file's mapping, copied once, into webml's constant storage).

The file is a stranger's: every length and varint is checked against the
bytes it lies in, and anything :func:`lift` does not expect (a second graph
field, which protobuf would merge; two ``raw_data`` fields in a tensor, of
which protobuf keeps the last; external data; the deprecated group wire
types) makes it lift nothing, so that the model is parsed whole as before
and judged by protobuf and the validator.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LIFT_MIN_BYTES", "Lifted", "lift"]

#: raw_data fields at least this long are lifted (smaller ones cost little to parse and stay).
LIFT_MIN_BYTES = 1 << 16

_LEN = 2  # the wire type of length-delimited fields
_MODEL_GRAPH, _GRAPH_INITIALIZER = 7, 5
_TENSOR_RAW_DATA, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 9, 13, 14


class _Malformed(Exception):
    """The bytes are not what :func:`lift` expects: it lifts nothing."""


@dataclass(frozen=True)
class Lifted:
    """``model``: the model's bytes without the lifted fields; ``data``: initializer index (in the
    graph's ``initializer`` list) -> (offset, length) of its raw data in the original bytes."""

    model: bytes
    data: dict[int, tuple[int, int]]


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(buf: memoryview, start: int, end: int):
    """(field number, wire type, start of the field, start of its value, end) of each field in [start, end)."""
    pos = start
    while pos < end:
        tag, value_start = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, value_end = _varint(buf, value_start, end)
        elif wire == 1:
            value_end = value_start + 8
        elif wire == 5:
            value_end = value_start + 4
        elif wire == _LEN:
            length, value_start = _varint(buf, value_start, end)
            value_end = value_start + length
        else:  # groups (3, 4) and the undefined 6, 7
            raise _Malformed
        if number == 0 or value_end > end:
            raise _Malformed
        yield number, wire, pos, value_start, value_end
        pos = value_end


def _field(number: int, payload: bytes | memoryview) -> bytes:
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(payload)) + bytes(payload)


def _tensor_without_raw_data(buf: memoryview, start: int, end: int) -> tuple[bytes, int, int] | None:
    """The tensor's bytes without its raw_data and where that lies, or None if it is not to be lifted."""
    raw = []
    for number, wire, field_start, value_start, value_end in _fields(buf, start, end):
        if number in (_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION):
            return None
        if number == _TENSOR_RAW_DATA and wire == _LEN:
            raw.append((field_start, value_start, value_end))
    if len(raw) != 1 or raw[0][2] - raw[0][1] < LIFT_MIN_BYTES:
        return None
    field_start, value_start, value_end = raw[0]
    return bytes(buf[start:field_start]) + bytes(buf[value_end:end]), value_start, value_end - value_start


def lift(data: memoryview) -> Lifted | None:
    """``data`` (a serialized ModelProto) without its large initializers' raw data, or None when there is
    nothing to lift or the bytes are not as expected (then parse them whole)."""
    try:
        graphs = [f for f in _fields(data, 0, len(data)) if f[0] == _MODEL_GRAPH]
        if len(graphs) != 1 or graphs[0][1] != _LEN:
            return None
        _, _, graph_field, graph_start, graph_end = graphs[0]
        parts: list[bytes] = []
        lifted: dict[int, tuple[int, int]] = {}
        copied = graph_start  # graph bytes up to here are in ``parts``
        index = -1
        for number, wire, field_start, value_start, value_end in _fields(data, graph_start, graph_end):
            if number != _GRAPH_INITIALIZER or wire != _LEN:
                continue
            index += 1
            found = _tensor_without_raw_data(data, value_start, value_end)
            if found is None:
                continue
            tensor, offset, length = found
            parts += [bytes(data[copied:field_start]), _field(_GRAPH_INITIALIZER, tensor)]
            copied = value_end
            lifted[index] = (offset, length)
    except _Malformed:
        return None
    if not lifted:
        return None
    graph = b"".join([*parts, bytes(data[copied:graph_end])])
    model = b"".join([bytes(data[:graph_field]), _field(_MODEL_GRAPH, graph), bytes(data[graph_end:])])
    return Lifted(model, lifted)

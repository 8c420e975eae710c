"""A pickle interpreter for data only: the opcodes that build numbers, strings, tuples, lists and dicts.

:mod:`pickle` runs code named by the file, and even a restricted
``Unpickler.find_class`` leaves the C unpickler's memo open to amplification
(one ``LONG_BINPUT`` of index 2**32-1 allocates about 32 GiB).  This
interpreter resolves globals only through the caller's ``find_global``, calls
only the ``callables`` it returns (REDUCE), keeps the memo in a dict, checks
every length against the data and never recurses.  Used by
:mod:`webml.zoo.torch_checkpoint`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection
from typing import Any

__all__ = ["PickleDataError", "check_depth", "run_pickle", "show"]


class PickleDataError(ValueError):
    """A pickle this interpreter refuses (unsupported opcode, truncated, malformed, or not data)."""


def show(value: Any) -> str:
    """A short repr for messages (names from a file may be long)."""
    if isinstance(value, str | bytes) and len(value) > 60:
        return repr(value[:60]) + "..."
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return f"a {type(value).__name__}"


_U8 = struct.Struct("<B").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_F64 = struct.Struct(">d").unpack_from
#: What a dict key may be: hashing it must be cheap and recursion-free.
_KEY_TYPES = frozenset((str, int, bytes, float, bool, type(None)))


class _Truncated(Exception):
    pass


def check_keys(keys: Any) -> None:
    for k in keys:
        if type(k) not in _KEY_TYPES:
            raise PickleDataError(f"a dict key is {show(k)} (only strings and numbers are read)")


def run_pickle(
    data: bytes,
    start: int,
    end: int,
    find_global: Callable[[str, str], Any],
    callables: Collection[Any],
    persistent_load: Callable[[Any], Any],
    what: str,
) -> tuple[Any, int]:
    """Run the pickle at ``data[start:]`` (it must stop before ``end``): (its object, where it stops).

    Only opcodes that build plain data run; memo indices go into a dict (a
    huge index costs one entry, not a huge array), every length is checked
    against the data, and nothing recurses.
    """
    stack: list[Any] = []
    metastack: list[list[Any]] = []
    memo: dict[int, Any] = {}
    i = start
    op = -1
    try:
        while True:
            if i >= end:
                raise _Truncated
            op = data[i]
            i += 1
            if op == 0x72:  # LONG_BINPUT
                memo[_U32(data, i)[0]] = stack[-1]
                i += 4
            elif op == 0x68:  # BINGET
                stack.append(memo[data[i]])
                i += 1
            elif op == 0x4B:  # BININT1
                stack.append(data[i])
                i += 1
            elif op == 0x58:  # BINUNICODE
                n = _U32(data, i)[0]
                i += 4
                if i + n > end:
                    raise _Truncated
                stack.append(str(data[i : i + n], "utf-8", "surrogatepass"))
                i += n
            elif op == 0x28:  # MARK
                metastack.append(stack)
                stack = []
            elif op == 0x74:  # TUPLE
                items = tuple(stack)
                stack = metastack.pop()
                stack.append(items)
            elif op == 0x52:  # REDUCE
                args = stack.pop()
                func = stack[-1]
                if func not in callables or type(args) is not tuple:
                    raise PickleDataError(f"{what}: REDUCE at byte {i - 1} calls {show(func)}, which is not allowed")
                stack[-1] = func(*args)
            elif op == 0x71:  # BINPUT
                memo[data[i]] = stack[-1]
                i += 1
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(())
            elif op == 0x85:  # TUPLE1
                stack[-1] = (stack[-1],)
            elif op == 0x4D:  # BININT2
                stack.append(_U16(data, i)[0])
                i += 2
            elif op == 0x4E:  # NONE
                stack.append(None)
            elif op == 0x51:  # BINPERSID
                stack[-1] = persistent_load(stack[-1])
            elif op == 0x89:  # NEWFALSE
                stack.append(False)
            elif op == 0x88:  # NEWTRUE
                stack.append(True)
            elif op == 0x7D:  # EMPTY_DICT
                stack.append({})
            elif op == 0x73:  # SETITEM
                value = stack.pop()
                key = stack.pop()
                target = stack[-1]
                if not isinstance(target, dict):
                    raise PickleDataError(f"{what}: SETITEM at byte {i - 1} on {show(target)}")
                check_keys((key,))
                target[key] = value
            elif op == 0x75:  # SETITEMS
                items = stack
                stack = metastack.pop()
                target = stack[-1]
                if not isinstance(target, dict) or len(items) % 2:
                    raise PickleDataError(f"{what}: SETITEMS at byte {i - 1} on {show(target)}")
                keys = items[0::2]
                check_keys(keys)
                target.update(zip(keys, items[1::2]))
            elif op == 0x6A:  # LONG_BINGET
                stack.append(memo[_U32(data, i)[0]])
                i += 4
            elif op == 0x4A:  # BININT
                stack.append(_I32(data, i)[0])
                i += 4
            elif op == 0x86:  # TUPLE2
                second = stack.pop()
                stack[-1] = (stack[-1], second)
            elif op == 0x87:  # TUPLE3
                third = stack.pop()
                second = stack.pop()
                stack[-1] = (stack[-1], second, third)
            elif op == 0x5D:  # EMPTY_LIST
                stack.append([])
            elif op == 0x61:  # APPEND
                value = stack.pop()
                target = stack[-1]
                if type(target) is not list:
                    raise PickleDataError(f"{what}: APPEND at byte {i - 1} on {show(target)}")
                target.append(value)
            elif op == 0x65:  # APPENDS
                items = stack
                stack = metastack.pop()
                target = stack[-1]
                if type(target) is not list:
                    raise PickleDataError(f"{what}: APPENDS at byte {i - 1} on {show(target)}")
                target.extend(items)
            elif op == 0x6C:  # LIST
                items = stack
                stack = metastack.pop()
                stack.append(items)
            elif op == 0x64:  # DICT
                items = stack
                stack = metastack.pop()
                if len(items) % 2:
                    raise PickleDataError(f"{what}: DICT at byte {i - 1} has an odd number of items")
                keys = items[0::2]
                check_keys(keys)
                stack.append(dict(zip(keys, items[1::2])))
            elif op == 0x8C:  # SHORT_BINUNICODE
                n = data[i]
                i += 1
                if i + n > end:
                    raise _Truncated
                stack.append(str(data[i : i + n], "utf-8", "surrogatepass"))
                i += n
            elif op in (0x55, 0x54, 0x43, 0x42, 0x8E, 0x8D):
                # SHORT_BINSTRING, BINSTRING, SHORT_BINBYTES, BINBYTES, BINBYTES8, BINUNICODE8
                width = {0x55: 1, 0x43: 1, 0x54: 4, 0x42: 4, 0x8E: 8, 0x8D: 8}[op]
                n = data[i] if width == 1 else (_U32 if width == 4 else _U64)(data, i)[0]
                i += width
                if i + n > end:
                    raise _Truncated
                raw = bytes(data[i : i + n])
                stack.append(raw if op in (0x43, 0x42, 0x8E) else raw.decode("utf-8", "surrogatepass"))
                i += n
            elif op in (0x8A, 0x8B):  # LONG1, LONG4
                n = data[i] if op == 0x8A else _U32(data, i)[0]
                i += 1 if op == 0x8A else 4
                if i + n > end:
                    raise _Truncated
                stack.append(int.from_bytes(data[i : i + n], "little", signed=True))
                i += n
            elif op == 0x47:  # BINFLOAT
                stack.append(_F64(data, i)[0])
                i += 8
            elif op == 0x63:  # GLOBAL: module\nname\n
                j = data.index(b"\n", i, end)
                k = data.index(b"\n", j + 1, end)
                module, name = str(data[i:j], "utf-8"), str(data[j + 1 : k], "utf-8")
                i = k + 1
                stack.append(find_global(module, name))
            elif op == 0x93:  # STACK_GLOBAL
                name = stack.pop()
                module = stack.pop()
                if type(module) is not str or type(name) is not str:
                    raise PickleDataError(f"{what}: STACK_GLOBAL at byte {i - 1} is not given two strings")
                stack.append(find_global(module, name))
            elif op == 0x94:  # MEMOIZE
                memo[len(memo)] = stack[-1]
            elif op == 0x62:  # BUILD: only the attributes of a dict (torch's ``_metadata``), which are dropped
                stack.pop()
                if not isinstance(stack[-1], dict):
                    raise PickleDataError(f"{what}: BUILD at byte {i - 1} on {show(stack[-1])}")
            elif op == 0x30:  # POP
                stack.pop()
            elif op == 0x31:  # POP_MARK
                stack = metastack.pop()
            elif op == 0x32:  # DUP
                stack.append(stack[-1])
            elif op == 0x80:  # PROTO
                if data[i] > 5:
                    raise PickleDataError(f"{what}: unsupported pickle protocol {data[i]}")
                i += 1
            elif op == 0x95:  # FRAME: frames only group opcodes
                i += 8
            elif op == 0x2E:  # STOP
                if metastack or len(stack) != 1:
                    raise PickleDataError(
                        f"{what}: the pickle stops with {len(stack)} objects and {len(metastack)} open marks"
                    )
                return stack[0], i
            else:
                raise PickleDataError(f"{what}: unsupported pickle opcode {bytes([op])!r} at byte {i - 1}")
    except (_Truncated, struct.error):
        if end < len(data):
            raise PickleDataError(f"{what}: the pickle is longer than the allocation budget allows") from None
        raise PickleDataError(f"{what}: the pickle ends before its STOP opcode (the file is truncated)") from None
    except (IndexError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, PickleDataError):
            raise
        raise PickleDataError(f"{what}: malformed pickle near byte {i} (opcode {bytes([op])!r})") from None


def check_depth(obj: Any, what: str, max_depth: int) -> None:
    """Refuse containers nested more than ``max_depth`` deep (level by level: no recursion, shared ones seen once)."""
    level, seen, depth = [obj], set(), 0
    while level:
        depth += 1
        if depth > max_depth:
            raise PickleDataError(f"{what} nests containers more than {max_depth} deep")
        deeper = []
        for container in level:
            children = container.values() if isinstance(container, dict) else container
            for child in children:
                if isinstance(child, dict | list | tuple) and id(child) not in seen:
                    seen.add(id(child))
                    deeper.append(child)
        level = deeper

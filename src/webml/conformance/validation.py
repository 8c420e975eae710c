"""Replaying the traced WPT validation tests (``third_party/wpt-webnn/validation``).

Each test of a file was recorded as the list of API calls WPT makes, with the
outcome WPT expects (README section 4).  Replaying a test means: fresh
objects, the file's ``setupCalls`` then the test's ``calls`` in order against
the real webml API, binding the recorded ids to what each call returns, and
checking every call's ``expect`` and the test's ``expectations``.

The JavaScript API maps onto the Python one as the API contract says:

* ``navigator.ml.createContext(opts)`` -> ``webml.ml.create_context(backend=..., **snake_case(opts))``;
* ``new MLGraphBuilder(ctx)`` -> ``webml.MLGraphBuilder(ctx)``;
* ``builder.input(name, desc)``, ``constant(desc, buffer)``, ``build(outputs)`` and the
  context/graph/tensor methods take their arguments positionally (descriptor
  dicts keep their camelCase keys);
* an operator method's trailing options dictionary becomes keyword arguments in
  snake_case (it is the options when the Python signature has no positional
  parameter left to take it);
* WebNN's promises are synchronous here: a rejection is a raised exception.

Two artefacts of the 2025-03 traces are undone, and each is noted in the
test's ``notes``:

* tests that pick data types with ``opSupportLimits()`` were traced with a mock
  that supports every type; a call that expects success but fails with a
  TypeError on a data type the context's ``op_support_limits()`` excludes is
  skipped (with whatever uses its result), as the WPT loop would skip it;
* utils_validation.js names every input of its data type x shape loops
  ``input``, which input() step 3 of the spec now rejects; a repeated name in
  a call that expects success is made unique.

>>> results = replay_file("reshape")
>>> sorted({r.status for r in results})  # its unnamed first test makes no call
['empty', 'passed']
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

import webml
from webml.api.builder import MLGraphBuilder, operator_methods
from webml.api.operand import MLOperand
from webml.errors import DOMException
from webml.ops.registry import snake_case

from .data import load, validation_files, wpt_dir

__all__ = ["ReplayError", "TestResult", "operators_of", "replay_all", "replay_file", "replay_test", "resolve_file"]

#: Builder methods that are not operators.
BUILDER_METHODS = frozenset({"input", "constant", "build"})

#: JS typed array -> NumPy dtype.
TYPED_ARRAYS = {
    "Float16Array": np.float16,
    "Float32Array": np.float32,
    "Float64Array": np.float64,
    "Int8Array": np.int8,
    "Uint8Array": np.uint8,
    "Uint8ClampedArray": np.uint8,
    "Int16Array": np.int16,
    "Uint16Array": np.uint16,
    "Int32Array": np.int32,
    "Uint32Array": np.uint32,
    "BigInt64Array": np.int64,
    "BigUint64Array": np.uint64,
}

#: Objects a trace names by ``{"$<kind>": id}``, and call targets ``<kind>#id``.
OBJECT_KINDS = frozenset({"context", "builder", "operand", "operandSequence", "graph", "tensor"})

# The tracer could not attach the expectation of a promise_rejects_js whose
# promise it did not track (createContext with an invalid enum value).
_UNTRACKED_REJECTION = "promise_rejects_js on an untracked promise"
_USES_LIMITS = "usesOpSupportLimits"


@dataclass
class TestResult:
    """The outcome of one traced test."""

    __test__ = False  # not a pytest test class

    file: str  # the file stem, e.g. "concat"
    name: str  # the WPT test name
    passed: bool
    reason: str = ""  # why it failed (or was skipped); "" when it passed
    operators: set[str] = field(default_factory=set)  # spec names of the operators it calls
    skipped: bool = False
    notes: list[str] = field(default_factory=list)  # trace artefacts the replay undid
    empty: bool = False  # replayed without error but checked nothing: neither a pass nor a failure

    @property
    def status(self) -> str:
        """One of passed, failed, skipped or empty (nothing to check)."""
        if self.skipped:
            return "skipped"
        if self.empty:
            return "empty"
        return "passed" if self.passed else "failed"

    @property
    def key(self) -> str:
        """``file::test name``, as the expectations list it."""
        return f"{self.file}::{self.name}"


class ReplayError(Exception):
    """The trace could not be replayed as recorded (not an outcome of the API)."""


class _Skipped(Exception):
    """The call uses an object whose creating call was skipped."""


class _Undefined:
    """JS ``undefined``: an omitted argument or dictionary member."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()


def typed_array(spec: dict[str, Any]) -> np.ndarray:
    """``{"$typedArray": "Float32Array", "length": n, "data": [...]}`` -> a NumPy array.

    Missing or short ``data`` is zero-filled up to ``length``; a detached
    array (``"detached": true``) is empty, as its buffer is in JS.
    """
    kind = spec["$typedArray"]
    if kind not in TYPED_ARRAYS:
        raise ReplayError(f"unsupported typed array {kind}")
    dtype = TYPED_ARRAYS[kind]
    if spec.get("detached"):
        return np.zeros(0, dtype)
    data = spec.get("data") or []
    array = np.zeros(spec.get("length", len(data)), dtype)
    if data:
        array[: len(data)] = np.array(data, dtype=dtype)
    return array


def _tag(value: dict[str, Any]) -> str | None:
    first = next(iter(value), "")
    return first if first.startswith("$") else None


# -- the Python side of a call -----------------------------------------------------------


@dataclass
class _Prepared:
    """A traced call resolved to a Python callable and its arguments."""

    fn: Callable[..., Any]
    args: list[Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    builder: Any = None  # for builder calls
    operator: str | None = None  # spec name, for operator calls
    py_name: str = ""


def _method(obj: Any, method: str) -> Callable[..., Any]:
    py_name = snake_case(method)
    fn = getattr(obj, py_name, None)
    if fn is None:
        raise ReplayError(f"{type(obj).__name__} has no method {py_name} (spec {method})")
    return fn


@cache
def _operator_signature(py_name: str) -> tuple[inspect.Signature, int, frozenset[str], bool]:
    """(signature without self, number of positional parameters, keyword names, takes **kwargs)."""
    sig = inspect.signature(getattr(MLGraphBuilder, py_name))
    params = list(sig.parameters.values())[1:]
    kinds = inspect.Parameter
    positional = sum(p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD) for p in params)
    if any(p.kind is kinds.VAR_POSITIONAL for p in params):
        positional = 1 << 30
    keywords = frozenset(p.name for p in params if p.kind in (kinds.KEYWORD_ONLY, kinds.POSITIONAL_OR_KEYWORD))
    var_keyword = any(p.kind is kinds.VAR_KEYWORD for p in params)
    return sig.replace(parameters=params), positional, keywords, var_keyword


def _prepare_operator(builder: Any, method: str, args: list[Any]) -> _Prepared:
    py_name = operator_methods().get(method) or snake_case(method)
    fn = getattr(builder, py_name, None)
    if fn is None:
        raise ReplayError(f"operator {method} not implemented (no MLGraphBuilder.{py_name})")
    sig, positional, keywords, var_keyword = _operator_signature(py_name)
    kwargs: dict[str, Any] = {}
    # The options dictionary is a trailing dict that no positional parameter
    # takes (JS null converts to an empty dictionary).
    if len(args) > positional and (isinstance(args[-1], dict) or args[-1] is None):
        for key, value in (args.pop() or {}).items():
            name = snake_case(key)
            if not var_keyword and name not in keywords:
                # A spec option the Python method lacks: an API gap, not a replay detail.
                raise ReplayError(
                    f"option {key!r} of {method} has no keyword parameter {name!r} in MLGraphBuilder.{py_name}{sig}"
                )
            kwargs[name] = value
    return _Prepared(fn, args, kwargs, builder, method, py_name)


# -- checking -------------------------------------------------------------------------


def _matches(expect: str, exc: BaseException) -> bool:
    kind = expect.removeprefix("reject:")
    if kind == "TypeError":
        return isinstance(exc, TypeError)
    if kind.startswith("DOMException:"):
        return isinstance(exc, DOMException) and exc.name == kind.partition(":")[2]
    raise ReplayError(f"unknown expectation {expect!r}")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _where(call: dict[str, Any]) -> str:
    return f"seq {call['seq']} {call['target']}.{call['method']}"


def _expects_success(call: dict[str, Any]) -> bool:
    return call.get("expect") in (None, "success")


def _is_builder_constructor(call: dict[str, Any]) -> bool:
    return call["target"] == "MLGraphBuilder" and call["method"] == "constructor"


def _check_call(call: dict[str, Any], outcome: Any, exc: BaseException | None) -> str:
    """'' when the call's outcome is what the trace expects, else why not."""
    expect = call.get("expect")
    where = _where(call)
    if expect in (None, "success"):
        if exc is None:
            return ""
        what = "expected success" if expect else "unchecked set-up call must not raise"
        return f"{where}: {what}, got {_describe(exc)}"
    if exc is None:
        return f"{where}: expected {expect}, got success (returned {type(outcome).__name__})"
    if not _matches(expect, exc):
        return f"{where}: expected {expect}, got {_describe(exc)}"
    pattern = call.get("expectLabelPattern")
    if pattern and not re.search(pattern, str(exc)):
        return f"{where}: expected {expect} with a message matching /{pattern}/, got {_describe(exc)}"
    return ""


def _property(obj: Any, prop: str) -> Any:
    if prop == "dataType":
        return obj.data_type
    if prop == "shape":
        return list(obj.shape)
    if prop == "length":
        return len(obj)
    raise ReplayError(f"unknown property {prop!r}")


# -- one test ---------------------------------------------------------------------------


class _Replay:
    """The objects of one test, by (kind, id), and the calls that made them."""

    def __init__(self, backend: str, notes: Iterable[str] = ()) -> None:
        self.backend = backend
        self.objects: dict[tuple[str, int], Any] = {}
        self.skipped: set[tuple[str, int]] = set()
        self.uses_limits = _USES_LIMITS in notes
        self.untracked_rejection = _UNTRACKED_REJECTION in notes
        self.input_names: dict[int, set[str]] = {}  # id(builder) -> its input names
        self.context_of: dict[int, Any] = {}  # id(builder) -> its context
        self.limits: dict[int, dict[str, Any]] = {}  # id(context) -> op_support_limits()
        self.renamed = 0
        self.unsupported_types: set[str] = set()  # "op(dataType)" skipped as unsupported
        # What the test's own calls checked: calls made (but building the builder, which
        # every test does first), rejections seen, properties compared.
        self.checks = 0

    # -- values ------------------------------------------------------------------

    def lookup(self, kind: str, ident: int) -> Any:
        key = (kind, ident)
        if key in self.objects:
            return self.objects[key]
        if key in self.skipped:
            raise _Skipped
        raise ReplayError(f"{kind} #{ident} does not exist (the call that creates it failed)")

    def decode(self, value: Any) -> Any:
        """A traced value -> the Python value (objects looked up, tags converted)."""
        if isinstance(value, list):
            return [None if v is UNDEFINED else v for v in map(self.decode, value)]
        if not isinstance(value, dict):
            return value
        tag = _tag(value)
        if tag is None:
            out = {}
            for k, v in value.items():
                v = self.decode(v)
                if v is not UNDEFINED:  # an undefined member is absent
                    out[k] = v
            return out
        if tag[1:] in OBJECT_KINDS:
            return self.lookup(tag[1:], value[tag])
        if tag == "$typedArray":
            return typed_array(value)
        if tag == "$arrayBuffer":
            return bytearray(value[tag])
        if tag == "$undefined":
            return UNDEFINED
        raise ReplayError(f"cannot replay a {tag} value: {value!r}")

    def bind(self, call: dict[str, Any], value: Any, skipped: bool = False) -> None:
        result = call.get("result")
        if isinstance(result, dict) and len(result) == 1:
            ((tag, ident),) = result.items()
            if skipped:
                self.skipped.add((tag[1:], ident))
            else:
                self.objects[(tag[1:], ident)] = value

    # -- calls ---------------------------------------------------------------------

    def prepare(self, call: dict[str, Any]) -> _Prepared:
        target, method = call["target"], call["method"]
        args = [self.decode(a) for a in call["args"]]
        while args and args[-1] is UNDEFINED:  # a trailing undefined is an omitted argument
            args.pop()
        args = [None if a is UNDEFINED else a for a in args]
        if target == "navigator.ml":
            if method != "createContext":
                return _Prepared(_method(webml.ml, method), args)
            options = args[0] if args and args[0] is not None else {}
            if not isinstance(options, dict) or len(args) > 1:
                raise ReplayError(f"unexpected createContext arguments {args!r}")
            kwargs = {"backend": self.backend, **{snake_case(k): v for k, v in options.items()}}
            return _Prepared(webml.ml.create_context, [], kwargs)
        if target == "MLGraphBuilder":
            if method != "constructor":
                raise ReplayError(f"unknown static call MLGraphBuilder.{method}")
            return _Prepared(MLGraphBuilder, args)
        kind, _, ident = target.partition("#")
        if kind not in OBJECT_KINDS or not ident.isdigit():
            raise ReplayError(f"unknown call target {target!r}")
        obj = self.lookup(kind, int(ident))
        if kind != "builder":
            return _Prepared(_method(obj, method), args)
        if method not in BUILDER_METHODS:
            return _prepare_operator(obj, method, args)
        if method == "input" and args and isinstance(args[0], str) and _expects_success(call):
            args[0] = self.unique_input_name(obj, args[0])
        return _Prepared(_method(obj, method), args, builder=obj)

    def unique_input_name(self, builder: Any, name: str) -> str:
        names = self.input_names.get(id(builder), set())
        if name not in names:
            return name
        n = 1
        while f"{name}_{n}" in names:
            n += 1
        self.renamed += 1
        return f"{name}_{n}"

    def succeeded(self, call: dict[str, Any], prepared: _Prepared, outcome: Any) -> None:
        self.bind(call, outcome)
        if call["target"] == "MLGraphBuilder" and prepared.args:
            self.context_of[id(outcome)] = prepared.args[0]
        elif call["method"] == "input" and prepared.builder is not None:
            self.input_names.setdefault(id(prepared.builder), set()).add(prepared.args[0])

    def unsupported(self, prepared: _Prepared, method: str) -> str:
        """A data type of the call's operands that the context's opSupportLimits() excludes, or ''."""
        context = self.context_of.get(id(prepared.builder))
        if context is None:
            return ""
        if id(context) not in self.limits:
            self.limits[id(context)] = context.op_support_limits()
        limits = self.limits[id(context)]
        if method == "input":
            descriptor = prepared.args[1] if len(prepared.args) > 1 else None
            data_type = descriptor.get("dataType") if isinstance(descriptor, dict) else None
            return "" if data_type in limits["input"]["dataTypes"] else str(data_type)
        if prepared.operator is None or prepared.operator not in limits:
            return ""
        try:
            bound = _operator_signature(prepared.py_name)[0].bind(*prepared.args, **prepared.kwargs)
        except TypeError:
            return ""
        for arg, limit in limits[prepared.operator].items():
            value = bound.arguments.get(snake_case(arg))
            for operand in value if isinstance(value, list) else [value]:
                if isinstance(operand, MLOperand) and operand.data_type not in limit["dataTypes"]:
                    return operand.data_type
        return ""

    def run(self, calls: list[dict[str, Any]], expectations: list[dict[str, Any]], setup: bool = False) -> str:
        """Replay ``calls`` then check ``expectations``: '' when all hold, else the first failure."""
        untracked_rejection = self.untracked_rejection and not setup
        rejected = False
        for call in calls:
            try:
                prepared = self.prepare(call)
            except _Skipped:
                self.bind(call, None, skipped=True)
                continue
            except ReplayError as err:
                return f"{_where(call)}: {err}"
            outcome, exc = None, None
            try:
                outcome = prepared.fn(*prepared.args, **prepared.kwargs)
            except Exception as err:
                exc = err
            if isinstance(exc, TypeError) and untracked_rejection and "expect" not in call:
                rejected = True  # the rejection the tracer could not attach to its call
                self.checks += 1
                continue
            # A WPT loop over opSupportLimits() types would not reach this call.
            unsupported = isinstance(exc, TypeError) and self.uses_limits and _expects_success(call)
            if unsupported and prepared.builder is not None:
                data_type = self.unsupported(prepared, call["method"])
                if data_type:
                    self.bind(call, None, skipped=True)
                    self.unsupported_types.add(f"{call['method']}({data_type})")
                    continue
            try:
                reason = _check_call(call, outcome, exc)
            except ReplayError as err:
                return f"{_where(call)}: {err}"
            if reason:
                return reason
            if not setup and not _is_builder_constructor(call):
                self.checks += 1
            if exc is None:
                self.succeeded(call, prepared, outcome)
        if untracked_rejection and not rejected:
            return "expected a call to reject with TypeError (promise_rejects_js), none did"
        for e in expectations:
            reason = self.check_expectation(e)
            if reason:
                return reason
        return ""

    def check_expectation(self, e: dict[str, Any]) -> str:
        ident, prop, expected = e["operand"], e["property"], e["expected"]
        for kind in ("operand", "operandSequence"):
            if (kind, ident) in self.objects:
                obj = self.objects[(kind, ident)]
                break
            if (kind, ident) in self.skipped:
                return ""  # an iteration WPT would not have run
        else:
            return f"operand #{ident} {prop}: expected {expected!r}, but the operand was not created"
        try:
            actual = _property(obj, prop)
        except ReplayError as err:
            return f"operand #{ident}: {err}"
        except Exception as exc:
            return f"operand #{ident}: reading {prop} raised {_describe(exc)}"
        if actual != expected:
            return f"operand #{ident} {prop}: expected {expected!r}, got {actual!r}"
        self.checks += 1
        return ""

    def notes(self) -> list[str]:
        notes = []
        if self.unsupported_types:
            notes.append(
                "skipped as opSupportLimits() excludes them (traced as supported): "
                + ", ".join(sorted(self.unsupported_types))
            )
        if self.renamed:
            notes.append(f"renamed {self.renamed} repeated input names")
        return notes


def operators_of(test: dict[str, Any]) -> set[str]:
    """Spec names of the operators a traced test calls."""
    return {
        c["method"] for c in test["calls"] if c["target"].startswith("builder#") and c["method"] not in BUILDER_METHODS
    }


# -- files ---------------------------------------------------------------------------------


def resolve_file(file: str | Path) -> Path:
    """A validation file from its path or its stem (``"concat"``)."""
    path = Path(file)
    return path if path.suffix == ".json" else wpt_dir() / "validation" / f"{file}.json"


def replay_test(test: dict[str, Any], setup: list[dict[str, Any]], file: str, backend: str) -> TestResult:
    """Replay one test of a decoded validation file (after its file's setup calls)."""
    operators = operators_of(test)
    if test.get("status") != "traced":
        reason = f"skipped: trace status {test.get('status')!r}"
        return TestResult(file, test["name"], False, reason, operators, skipped=True)
    replay = _Replay(backend, test.get("notes", ()))
    reason = replay.run(setup, [], setup=True)
    if reason:
        reason = f"setup: {reason}"
    else:
        reason = replay.run(test["calls"], test.get("expectations", []))
    if not reason and not replay.checks:
        # No call, or only the builder's construction, or every call skipped (see above):
        # WPT would assert nothing here, so this is no pass.
        why = "nothing to check: " + (
            "the trace only constructs a builder, or every call was skipped"
            if test["calls"]
            else "the trace makes no call"
        )
        return TestResult(file, test["name"], False, why, operators, notes=replay.notes(), empty=True)
    return TestResult(file, test["name"], not reason, reason, operators, notes=replay.notes())


def replay_file(path: str | Path, backend: str = "reference") -> list[TestResult]:
    """Replay every test of one validation file (a path or a stem) on ``backend``."""
    path = resolve_file(path)
    doc = load(path)
    setup = doc.get("setupCalls", [])
    return [replay_test(test, setup, path.stem, backend) for test in doc["tests"]]


def replay_all(
    backend: str = "reference",
    files: Iterable[str | Path] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[TestResult]:
    """Replay every validation file (or the given paths/stems) on ``backend``; ``progress(done, total, "files")``
    after each file."""
    paths = validation_files() if files is None else [resolve_file(f) for f in files]
    results: list[TestResult] = []
    for done, path in enumerate(paths, 1):
        results += replay_file(path, backend)
        if progress is not None:
            progress(done, len(paths), "files")
    return results

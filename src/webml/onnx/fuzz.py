"""A seeded mutation fuzzer of the ONNX importer: ``python -m webml.onnx.fuzz --cases 3000 --seed 1``.

Seeds are the node test models of the onnx package (generated offline by
``onnx.backend.test.loader.load_model_tests(kind="node")``) and any model
files given.  Each case is one seed with one to three mutations (inputs
flipped, deleted or unnamed, huge or negative dimensions and attribute
ints, axes out of range, unknown element types, truncated or flipped bytes,
duplicated nodes, huge ConstantOfShape/Split/Range/Tile/Expand arguments,
external data pointing out of its folder ...).  It runs ``webml.onnx.load``
on the bytes, and ``compute`` on zeros when it loads, in a worker process
with an address-space limit and a per-case timeout, so that a crash is
counted, not fatal.  Outcomes:

* ``loaded`` (too large to compute, see COMPUTE_BYTES) / ``computed`` / ``refused``: fine (a refusal is an
  OnnxImportError, TypeError, ValueError or a DOMException of webml.errors);
* ``internal``: any other exception, or an OnnxImportError caused by one
  (the importer's last-resort wrapping of a bug);
* ``memory``: MemoryError (the address-space limit was hit);
* ``crash``: the worker died of a signal; ``hang``: it ran past the timeout.

It lives in the package (not in tests/) so that the command is available
wherever webml is installed; tests/test_onnx_fuzz.py runs a few hundred cases.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from .importers import SUPPORTED_OPERATORS

__all__ = ["BAD", "Result", "main", "make_cases", "mutate", "run_cases", "seed_models"]

#: The outcomes that fail the fuzz test.
BAD = ("internal", "memory", "crash", "hang")

#: A loaded graph is computed when all its tensors together take at most this many bytes.
COMPUTE_BYTES = 2**28

HUGE_INTS = [2**31, 2**31 - 1, 2**62, 2**63 - 1, -(2**31), -(2**63), -1, 0, 3, 5, 100, -4, 2**20]


@dataclass
class Result:
    index: int
    outcome: str
    detail: str = ""


def seed_models() -> list[bytes]:
    """Serialized seed models: onnx's node test models."""
    from .conformance import node_cases

    return [case.model.SerializeToString() for case in node_cases() if case.model is not None]


# -- mutations ---------------------------------------------------------------------------------------------


def _any_node(rng, model):
    nodes = list(model.graph.node)
    return rng.choice(nodes) if nodes else None


def _m_input(rng, model):
    node = _any_node(rng, model)
    if node is None or not node.input:
        return "no-op"
    i = rng.randrange(len(node.input))
    choice = rng.choice(["empty", "undefined", "other", "delete", "extra"])
    if choice == "empty":
        node.input[i] = ""
    elif choice == "undefined":
        node.input[i] = "never_defined"
    elif choice == "other":
        names = [v.name for v in model.graph.input] + [o for n in model.graph.node for o in n.output]
        node.input[i] = rng.choice(names) if names else ""
    elif choice == "delete":
        del node.input[i]
    else:
        node.input.append(rng.choice([node.input[i], ""]))
    return f"input {choice} of {node.op_type}"


def _m_names(rng, model):
    choice = rng.choice(["graph input", "node output", "graph output", "node name"])
    if choice == "graph input" and model.graph.input:
        rng.choice(list(model.graph.input)).name = ""
    elif choice == "node output" and model.graph.node:
        node = _any_node(rng, model)
        if node.output:
            node.output[rng.randrange(len(node.output))] = rng.choice(["", node.input[0] if node.input else ""])
    elif choice == "graph output" and model.graph.output:
        rng.choice(list(model.graph.output)).name = rng.choice(["", "nothing"])
    elif model.graph.node:
        _any_node(rng, model).name = "x" * rng.choice([0, 1, 5000])
    return f"names: {choice}"


def _m_dims(rng, model):
    values = list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output)
    if rng.random() < 0.3 and model.graph.initializer:
        t = rng.choice(list(model.graph.initializer))
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice(HUGE_INTS)
        return "initializer dims"
    if not values:
        return "no-op"
    v = rng.choice(values)
    shape = v.type.tensor_type.shape
    choice = rng.choice(["huge", "add", "clear", "param"])
    if choice == "huge" and shape.dim:
        d = shape.dim[rng.randrange(len(shape.dim))]
        d.dim_value = rng.choice([2**28, 2**31, 2**40, 2**62, -1, 0])
    elif choice == "add":
        for _ in range(rng.choice([1, 10, 40])):
            shape.dim.add().dim_value = rng.choice([1, 2, 2**20])
    elif choice == "clear":
        v.type.tensor_type.ClearField("shape")
    elif shape.dim:
        shape.dim[rng.randrange(len(shape.dim))].dim_param = "free"
    return f"dims {choice}"


def _m_attribute(rng, model):
    from onnx import AttributeProto

    node = _any_node(rng, model)
    if node is None:
        return "no-op"
    if node.attribute and rng.random() < 0.25:
        del node.attribute[rng.randrange(len(node.attribute))]
        return f"attribute deleted from {node.op_type}"
    ints = [a for a in node.attribute if a.type in (AttributeProto.INT, AttributeProto.INTS)]
    if ints:
        a = rng.choice(ints)
        if a.type == AttributeProto.INT:
            a.i = rng.choice(HUGE_INTS)
        elif a.ints:
            a.ints[rng.randrange(len(a.ints))] = rng.choice(HUGE_INTS)
        else:
            a.ints.append(rng.choice(HUGE_INTS))
        return f"attribute {a.name} of {node.op_type}"
    name = rng.choice(["axis", "axes", "num_outputs", "to", "perm", "keepdims", "blocksize"])
    a = node.attribute.add()
    a.name = name
    if rng.random() < 0.2:
        a.type = AttributeProto.STRING
        a.s = b"x"
    elif name in ("axes", "perm"):
        a.type = AttributeProto.INTS
        a.ints.extend([rng.choice(HUGE_INTS)])
    else:
        a.type = AttributeProto.INT
        a.i = rng.choice(HUGE_INTS)
    return f"attribute {name} added to {node.op_type}"


def _m_axis(rng, model):
    from onnx import AttributeProto

    for node in rng.sample(list(model.graph.node), len(model.graph.node)):
        for a in node.attribute:
            if a.name in ("axis", "axes"):
                value = rng.choice([-9, -4, 3, 4, 5, 100, 2**31, -(2**31)])
                if a.type == AttributeProto.INT:
                    a.i = value
                else:
                    del a.ints[:]
                    a.ints.append(value)
                return f"axis of {node.op_type} = {value}"
    return "no-op"


def _m_elem_type(rng, model):
    values = list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output)
    if rng.random() < 0.3 and model.graph.initializer:
        rng.choice(list(model.graph.initializer)).data_type = rng.choice([0, 8, 11, 99, 16])
        return "initializer elem_type"
    if not values:
        return "no-op"
    v = rng.choice(values)
    v.type.tensor_type.elem_type = rng.choice([0, 8, 11, 99, 10, 23])
    return "value elem_type"


def _m_duplicate(rng, model):
    node = _any_node(rng, model)
    if node is None:
        return "no-op"
    copy = model.graph.node.add()
    copy.CopyFrom(node)
    if rng.random() < 0.5:  # move the copy first, before its inputs are defined
        nodes = list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend([nodes[-1], *nodes[:-1]])
    return f"duplicated {node.op_type}"


def _m_op_type(rng, model):
    node = _any_node(rng, model)
    if node is None:
        return "no-op"
    ops = [*SUPPORTED_OPERATORS, "RegexFullMatch", "LabelEncoder", "TreeEnsemble", "If", "Loop", "Nope"]
    old, node.op_type = node.op_type, rng.choice(ops)
    if node.op_type in ("LabelEncoder", "TreeEnsemble") and rng.random() < 0.5:
        node.domain = "ai.onnx.ml"
    return f"{old} -> {node.op_type}"


def _m_external(rng, model):
    from onnx import TensorProto

    if not model.graph.initializer:
        return "no-op"
    t = rng.choice(list(model.graph.initializer))
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    location = rng.choice(["/etc/passwd", "../../../../etc/passwd", "missing.bin", "", "/proc/self/mem", "."])
    entry = t.external_data.add()
    entry.key, entry.value = "location", location
    if rng.random() < 0.5:
        entry = t.external_data.add()
        entry.key, entry.value = rng.choice(["offset", "length"]), rng.choice(["-1", "x", str(2**62)])
    return f"external data {location!r}"


def _m_amplify(rng, model):
    """Replace the model by one node with huge static arguments."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    n = rng.choice([2**20, 2**28, 2**30, 2**40, 2**62])
    kind = rng.choice(["ConstantOfShape", "Split", "Range", "Tile", "Expand", "Mul"])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    inits, inputs = [], [x]
    if kind == "ConstantOfShape":
        node = helper.make_node("ConstantOfShape", ["s"], ["y"])
        inits.append(numpy_helper.from_array(np.array([n, 4][: rng.choice([1, 2])], np.int64), "s"))
        inputs = []
    elif kind == "Split":
        node = helper.make_node("Split", ["x"], ["y", "z"], axis=0, num_outputs=n)
    elif kind == "Range":
        node = helper.make_node("Range", ["a", "b", "c"], ["y"])
        for name, v in zip("abc", [0.0, float(n), rng.choice([1.0, 0.0, 1e-30])]):
            inits.append(numpy_helper.from_array(np.array(v, np.float32), name))
        inputs = []
    elif kind == "Tile":
        node = helper.make_node("Tile", ["x", "r"], ["y"])
        inits.append(numpy_helper.from_array(np.array([n], np.int64), "r"))
    elif kind == "Expand":
        node = helper.make_node("Expand", ["x", "s"], ["y"])
        inits.append(numpy_helper.from_array(np.array([n, 2], np.int64), "s"))
    else:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])
        inputs = [x]
        node = helper.make_node("Mul", ["x", "x"], ["y"])
    outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in node.output]
    graph = helper.make_graph([node], "amplify", inputs, outputs, inits)
    model.CopyFrom(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    return f"amplify {kind} {n}"


STRUCTURED = [_m_input, _m_names, _m_dims, _m_attribute, _m_axis, _m_elem_type, _m_duplicate, _m_op_type]
RARE = [_m_external, _m_amplify]


def mutate(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """One mutated model (description, bytes) of the serialized ``data``."""
    import onnx

    if rng.random() < 0.15:  # byte level
        buf = bytearray(data)
        if rng.random() < 0.5 and buf:
            cut = rng.randrange(len(buf) + 1)
            return f"truncated at {cut}", bytes(buf[:cut])
        for _ in range(rng.choice([1, 2, 8])):
            if buf:
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        return "byte flips", bytes(buf)
    model = onnx.ModelProto()
    model.ParseFromString(data)
    done = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        mutation = rng.choice(RARE) if rng.random() < 0.12 else rng.choice(STRUCTURED)
        done.append(mutation(rng, model))
    return "; ".join(done), model.SerializeToString()


def make_cases(
    seeds: Sequence[bytes], count: int, seed: int, extra: Sequence[bytes] = ()
) -> list[tuple[str, bytes]]:
    """``count`` mutated models: a tenth of them from ``extra`` (real models) when given."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        pool = extra if extra and rng.random() < 0.1 else seeds
        cases.append(mutate(rng, pool[rng.randrange(len(pool))]))
    return cases


# -- running -------------------------------------------------------------------------------------------------


def _worker(conn: Connection, backend: str, memory: int) -> None:
    import resource
    import warnings

    import numpy as np

    import webml
    import webml.onnx
    from webml.errors import DOMException

    warnings.simplefilter("ignore")
    used = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (used + memory, used + memory))
    context = webml.ml.create_context(backend=backend)
    fine = (TypeError, ValueError, DOMException)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        index, data = job
        outcome, detail = "refused", ""
        try:
            graph = webml.onnx.load(data, context)
            if isinstance(graph, webml.onnx.DynamicGraph):  # dynamic dimensions: build it with each of size 1
                graph = graph.graph({a.name: [d if isinstance(d, int) else 1 for d in a.shape] for a in graph.inputs})
            outcome = "loaded"
            # A model may declare tensors up to maxTensorByteLength: computing those is what it asks for,
            # not a blow-up, so only graphs whose tensors (inputs included) are small are computed.
            if sum(d.byte_length for d in graph.ir.operands.values()) <= COMPUTE_BYTES:
                descs = graph.input_descriptors.items()
                feeds = {n: np.zeros(d.shape, webml.dtypes.numpy_dtype(d.data_type)) for n, d in descs}
                context.compute(graph, feeds)
                outcome = "computed"
        except MemoryError:
            outcome, detail = "memory", "MemoryError"
        except Exception as exc:
            cause = exc.__cause__
            if not isinstance(exc, fine):
                outcome = "internal"
            elif isinstance(exc, webml.onnx.OnnxImportError) and cause is not None and not isinstance(cause, fine):
                outcome, exc = "internal", cause
            elif isinstance(exc, webml.onnx.OnnxImportError) and isinstance(cause, MemoryError):
                outcome = "memory"
            if outcome in BAD:
                frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
                where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
                detail = f"{type(exc).__name__}{where}: {str(exc)[:300]}"
            else:
                detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        conn.send((index, outcome, detail))


class _Slot:
    def __init__(self, ctx, backend: str, memory: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, backend, memory), daemon=True)
        self.process.start()
        child.close()
        self.job: int | None = None
        self.started = 0.0

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


def run_cases(
    cases: Sequence[tuple[str, bytes]],
    workers: int = 2,
    timeout: float = 30.0,
    memory: int = 2 * 2**30,
    backend: str = "reference",
) -> list[Result]:
    """Each case in a worker process (``memory`` bytes of address space beyond its start, ``timeout`` s)."""
    ctx = multiprocessing.get_context("spawn")
    pending = list(range(len(cases)))[::-1]
    results: dict[int, Result] = {}
    slots = [_Slot(ctx, backend, memory) for _ in range(min(workers, len(cases)) or 1)]
    startup = 120.0  # a fresh worker imports webml first

    def give(slot: _Slot) -> None:
        if pending:
            slot.job = pending.pop()
            slot.started = time.monotonic()
            slot.conn.send((slot.job, cases[slot.job][1]))
        else:
            slot.job = None

    fresh = {id(s) for s in slots}
    for s in slots:
        give(s)
    try:
        while any(s.job is not None for s in slots):
            busy = [s for s in slots if s.job is not None]
            wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout=1.0)
            for i, s in enumerate(slots):
                if s.job is None:
                    continue
                limit = timeout + (startup if id(s) in fresh else 0)
                if s.conn.poll():
                    try:
                        index, outcome, detail = s.conn.recv()
                    except (EOFError, OSError):  # the worker died mid-answer
                        index, outcome, detail = s.job, None, ""
                    if outcome is not None:
                        results[index] = Result(index, outcome, detail)
                        fresh.discard(id(s))
                        give(s)
                        continue
                if not s.process.is_alive():
                    code = s.process.exitcode
                    results[s.job] = Result(s.job, "crash", f"exit code {code}")
                elif time.monotonic() - s.started > limit:
                    results[s.job] = Result(s.job, "hang", f"no result after {limit:.0f} s")
                else:
                    continue
                s.stop()
                slots[i] = _Slot(ctx, backend, memory)
                fresh.add(id(slots[i]))
                give(slots[i])
    finally:
        for s in slots:
            if s.process.is_alive():
                try:
                    s.conn.send(None)
                except OSError:
                    pass
            s.process.join(timeout=5)
            s.stop()
    return [results[i] for i in sorted(results)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webml.onnx.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    parser.add_argument("--memory-gib", type=float, default=2.0, help="address space per worker beyond its start")
    parser.add_argument("--backend", default="reference")
    parser.add_argument("--model", action="append", default=[], help="another seed model file (repeatable)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    seeds = seed_models()
    cases = make_cases(seeds, args.cases, args.seed, [Path(p).read_bytes() for p in args.model])
    results = run_cases(cases, args.workers, args.timeout, int(args.memory_gib * 2**30), args.backend)
    counts = Counter(r.outcome for r in results)
    took = time.monotonic() - start
    print(f"{len(results)} cases (seed {args.seed}, {len(seeds) + len(args.model)} seed models) in {took:.0f} s")
    for outcome in ("computed", "loaded", "refused", *BAD):
        print(f"  {outcome:9} {counts.get(outcome, 0)}")
    bad = [r for r in results if r.outcome in BAD]
    for r in bad[:50]:
        print(f"case {r.index} [{cases[r.index][0]}]: {r.outcome}: {r.detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""WebGPU kernels of the recurrent operators (gru, gruCell, lstm, lstmCell), by composition.

Each operator emits other operators' kernels (:meth:`~.kernels.Emitter.call`) on scratch
buffers, following the reference (``webml.backends.reference.recurrent``) and the spec's
emulations: ``gemm`` for the matrix products (bias included as its ``c``), ``slice`` to
pick each gate out of the stacked products, the activation kernels (``relu``, ``sigmoid``,
``tanh``) and ``add``/``sub``/``mul`` for the gate arithmetic, ``concat`` to lay the states
out in the outputs.  gru and lstm are the spec's loop over directions and time steps,
unrolled at compile time (shapes and steps are known then); the backward direction walks
the steps in reverse and each hidden state lands at its own time index.

Everything is computed in float32 scratch buffers: float16 operands are widened once and
the results rounded once when they are written to the outputs (as the reference rounds
its float64 result once), so a long sequence does not pile up float16 roundings.
Reshapes are views (:func:`_view`): a slot of the same buffer with another shape, no copy.
The input projection of every time step is one ``gemm`` per direction, before the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...ir import OperandDesc
from ...ops.recurrent import PEEPHOLE_GATES
from .kernels import Emitter, kernel
from .program import Slot

F32 = "float32"


def _view(slot: Slot, shape: Sequence[int]) -> Slot:
    """``slot``'s buffer seen with another shape of the same element count (a free reshape)."""
    return Slot(slot.id, OperandDesc(slot.data_type, tuple(shape)))


def _copy(k: Emitter, source: Slot, out: Slot) -> None:
    """Element-wise copy, converting the data type (float16 <-> float32: loads give f32, the store rounds)."""
    m = k.map(out, "recurrent_copy")
    m.body = f"  return {m.input('x', source)}(i);"
    k.emit(m)


def _float32(k: Emitter, slot: Slot | None) -> Slot | None:
    """``slot`` as float32 (a widened copy for float16)."""
    if slot is None or slot.data_type == F32:
        return slot
    wide = k.scratch(F32, slot.shape)
    _copy(k, slot, wide)
    return wide


def _target(k: Emitter, out: Slot) -> Slot:
    """Where to compute ``out``'s value: ``out`` itself when float32, else a float32 scratch (see :func:`_land`)."""
    return out if out.data_type == F32 else k.scratch(F32, out.shape)


def _land(k: Emitter, value: Slot, out: Slot) -> None:
    """Finish an output computed into ``_target(k, out)``: round it into ``out`` if that was a scratch."""
    if value.id != out.id:
        _copy(k, value, out)


class _Ops:
    """The float32 operators a cell composes, each into a new scratch or a given ``dest``."""

    def __init__(self, k: Emitter) -> None:
        self.k = k

    def _dest(self, dest: Slot | None, shape: Sequence[int]) -> Slot:
        return self.k.scratch(F32, tuple(shape)) if dest is None else dest

    def binary(self, op: str, a: Slot, b: Slot, dest: Slot | None = None) -> Slot:
        # Operands here share the output's shape or broadcast to it from the right (peepholes « hidden »).
        shape = a.shape if len(a.shape) >= len(b.shape) else b.shape
        dest = self._dest(dest, shape)
        self.k.call(op, dest, a=a, b=b)
        return dest

    def act(self, name: str, x: Slot, dest: Slot | None = None) -> Slot:
        dest = self._dest(dest, x.shape)
        self.k.call(name, dest, input=x)
        return dest

    def gemm(self, a: Slot, b: Slot, c: Slot | None, dest: Slot | None = None) -> Slot:
        """``a @ b.T + c`` (the weights are stacked « gates * hidden, ... »: b transposed)."""
        dest = self._dest(dest, (a.shape[0], b.shape[0]))
        extra = {} if c is None else {"c": c}
        self.k.call("gemm", dest, a=a, b=b, **extra, alpha=1.0, beta=1.0, a_transpose=False, b_transpose=True)
        return dest

    def slice(self, x: Slot, starts: Sequence[int], sizes: Sequence[int]) -> Slot:
        dest = self._dest(None, sizes)
        self.k.call("slice", dest, input=x, starts=tuple(starts), sizes=tuple(sizes), strides=(1,) * len(sizes))
        return dest

    def concat(self, parts: Sequence[Slot], axis: int, dest: Slot) -> None:
        """``parts`` concatenated along ``axis`` into ``dest`` (the concat kernel keeps each dispatch
        within the device's storage bindings)."""
        if len(parts) == 1:
            _copy(self.k, _view(parts[0], dest.shape), dest)
            return
        value = _target(self.k, dest)
        self.k.call("concat", value, inputs=list(parts), axis=axis)
        _land(self.k, value, dest)


def _gates(layout: str, hidden_size: int) -> dict[str, int]:
    """Each gate's first column in the stacked products: the layout names their order."""
    return {g: n * hidden_size for n, g in enumerate(layout)}


@dataclass
class _Direction:
    """One direction's float32 weights: « gates * hidden, input », « gates * hidden, hidden », biases, peepholes."""

    weight: Slot
    recurrent_weight: Slot
    bias: Slot | None
    recurrent_bias: Slot | None
    peephole: Slot | None = None


def _per_direction(k: Emitter, slot: Slot | None, d: int, count: int) -> Slot | None:
    """Direction ``d``'s part of a stacked network operand « numDirections, ... » (float32)."""
    if slot is None:
        return None
    rest = slot.shape[1:]
    if count == 1:
        return _view(slot, rest)
    part = _Ops(k).slice(slot, (d,) + (0,) * len(rest), (1, *rest))
    return _view(part, rest)


class _Cell:
    """One time step of a GRU or LSTM cell on float32 slots, the reference's equations."""

    def __init__(self, k: Emitter, weights: _Direction, hidden_size: int, layout: str, activations: Sequence[str]):
        self.ops = _Ops(k)
        self.k = k
        self.w = weights
        self.hidden = hidden_size
        self.at = _gates(layout, hidden_size)
        self.activations = tuple(activations)
        self._parts: dict[str, Slot | None] = {}

    def _part(self, key: str, source: Slot | None, start: int) -> Slot | None:
        """``hidden`` rows of ``source`` from ``start`` (a weight's gate, a peephole), sliced once per cell."""
        if key not in self._parts:
            rest = source.shape[1:] if source is not None else ()
            self._parts[key] = (
                None if source is None else self.ops.slice(source, (start,) + (0,) * len(rest), (self.hidden, *rest))
            )
        return self._parts[key]

    def project(self, x: Slot, lstm: bool = False) -> Slot:
        """The input's products with the weights, bias included: « rows, gates * hidden ».

        An LSTM's gates add both biases to both products: they are summed once here and the
        step's recurrent product adds this projection as its gemm's ``c`` (no separate add).
        """
        bias = self.w.bias
        if lstm and self.w.recurrent_bias is not None:
            rb = self.w.recurrent_bias
            bias = rb if bias is None else self.ops.binary("add", bias, rb)
        return self.ops.gemm(x, self.w.weight, bias)

    def gate(self, product: Slot, name: str) -> Slot:
        batch = product.shape[0]
        return self.ops.slice(product, (0, self.at[name]), (batch, self.hidden))

    def gru(self, xp: Slot, h: Slot, reset_after: bool, dest: Slot | None = None) -> Slot:
        """The new hidden state from the input projection ``xp`` « batch, 3 * hidden » and ``h``."""
        ops, (gate_fn, new_fn) = self.ops, self.activations
        hp = ops.gemm(h, self.w.recurrent_weight, self.w.recurrent_bias)
        z = ops.act(gate_fn, ops.binary("add", self.gate(xp, "z"), self.gate(hp, "z")))
        r = ops.act(gate_fn, ops.binary("add", self.gate(xp, "r"), self.gate(hp, "r")))
        if reset_after:
            # The reset gate scales the recurrent term after its product (recurrent bias inside).
            recurrent = ops.binary("mul", r, self.gate(hp, "n"))
        else:
            rw_n = self._part("rw_n", self.w.recurrent_weight, self.at["n"])
            rb_n = self._part("rb_n", self.w.recurrent_bias, self.at["n"])
            recurrent = ops.gemm(ops.binary("mul", r, h), rw_n, rb_n)
        n = ops.act(new_fn, ops.binary("add", self.gate(xp, "n"), recurrent))
        # z * h + (1 - z) * n, written n + z * (h - n): no constant one needed.
        return ops.binary("add", n, ops.binary("mul", z, ops.binary("sub", h, n)), dest)

    def lstm(
        self, xp: Slot, h: Slot, c: Slot, dest_h: Slot | None = None, dest_c: Slot | None = None
    ) -> tuple[Slot, Slot]:
        """The new hidden and cell states from the input projection ``xp`` « batch, 4 * hidden » (both biases
        in it: ``project(x, lstm=True)``), ``h`` and ``c``."""
        ops, (gate_fn, cell_fn, filter_fn) = self.ops, self.activations
        pre = ops.gemm(h, self.w.recurrent_weight, xp)
        peep_at = _gates(PEEPHOLE_GATES, self.hidden)

        def gate(name: str) -> Slot:
            value = self.gate(pre, name)
            if self.w.peephole is not None:
                # The peepholes of the input, forget and output gates all look at the incoming cell state.
                weight = self._part(f"peephole_{name}", self.w.peephole, peep_at[name])
                value = ops.binary("add", value, ops.binary("mul", c, weight))  # type: ignore[arg-type]
            return ops.act(gate_fn, value)

        i, f = gate("i"), gate("f")
        g = ops.act(cell_fn, self.gate(pre, "g"))
        o = gate("o")
        c_new = ops.binary("add", ops.binary("mul", f, c), ops.binary("mul", i, g), dest_c)
        h_new = ops.binary("mul", o, ops.act(filter_fn, c_new), dest_h)
        return h_new, c_new


# -- the cells ----------------------------------------------------------------------------


@kernel("gruCell")
def gru_cell(
    k: Emitter,
    input: Slot,
    weight: Slot,
    recurrent_weight: Slot,
    hidden_state: Slot,
    bias: Slot | None = None,
    recurrent_bias: Slot | None = None,
    *,
    out: Slot,
    hidden_size: int,
    reset_after: bool,
    layout: str,
    activations: Sequence[str],
) -> None:
    w = _Direction(_float32(k, weight), _float32(k, recurrent_weight), _float32(k, bias), _float32(k, recurrent_bias))
    cell = _Cell(k, w, hidden_size, layout, activations)
    value = _target(k, out)
    cell.gru(cell.project(_float32(k, input)), _float32(k, hidden_state), reset_after, value)
    _land(k, value, out)


@kernel("lstmCell")
def lstm_cell(
    k: Emitter,
    input: Slot,
    weight: Slot,
    recurrent_weight: Slot,
    hidden_state: Slot,
    cell_state: Slot,
    bias: Slot | None = None,
    recurrent_bias: Slot | None = None,
    peephole_weight: Slot | None = None,
    *,
    out: list[Slot],
    hidden_size: int,
    layout: str,
    activations: Sequence[str],
) -> None:
    w = _Direction(
        _float32(k, weight),
        _float32(k, recurrent_weight),
        _float32(k, bias),
        _float32(k, recurrent_bias),
        _float32(k, peephole_weight),
    )
    cell = _Cell(k, w, hidden_size, layout, activations)
    h_out, c_out = _target(k, out[0]), _target(k, out[1])
    xp = cell.project(_float32(k, input), lstm=True)
    cell.lstm(xp, _float32(k, hidden_state), _float32(k, cell_state), h_out, c_out)
    _land(k, h_out, out[0])
    _land(k, c_out, out[1])


# -- the networks ---------------------------------------------------------------------------


def _network(
    k: Emitter,
    input: Slot,
    operands: dict[str, Slot | None],
    initial: list[Slot | None],
    outs: list[Slot],
    *,
    steps: int,
    hidden_size: int,
    return_sequence: bool,
    direction: str,
    layout: str,
    activations: Sequence[str],
    reset_after: bool | None = None,
) -> None:
    """The spec's decomposition of gru (one state) and lstm (hidden and cell states) into cells.

    ``initial`` holds the initial states « numDirections, batch, hidden » (None: zeros);
    ``outs`` the final states then, with ``return_sequence``, the sequence
    « steps, numDirections, batch, hidden ».
    """
    ops = _Ops(k)
    batch, features = input.shape[1:]
    count = operands["weight"].shape[0]
    state_shape = (batch, hidden_size)
    x = _view(_float32(k, input), (steps * batch, features))
    # float16 operands widened once for both directions.
    operands = {name: _float32(k, slot) for name, slot in operands.items()}
    initial = [_float32(k, slot) for slot in initial]
    finals: list[list[Slot]] = [[] for _ in initial]
    sequence: list[list[Slot]] = []  # per direction, per time step
    for d in range(count):
        w = _Direction(*(_per_direction(k, operands[name], d, count) for name in _Direction.__dataclass_fields__))
        cell = _Cell(k, w, hidden_size, layout, activations)
        # Every step's input projection at once: « steps, batch, gates * hidden ».
        xp = _view(cell.project(x, lstm=reset_after is None), (steps, batch, w.weight.shape[0]))
        # An absent initial state is a scratch nothing writes: WebGPU zero-initialises buffers.
        states = [k.scratch(F32, state_shape) if s is None else _per_direction(k, s, d, count) for s in initial]
        backward = direction == "backward" or d == 1
        hidden_at: list[Slot | None] = [None] * steps
        order = range(steps - 1, -1, -1) if backward else range(steps)
        for t in order:
            xp_t = _view(ops.slice(xp, (t, 0, 0), (1, batch, xp.shape[2])), (batch, xp.shape[2]))
            # One direction's last step writes its states straight into float32 outputs « 1, batch, hidden ».
            last = count == 1 and t == order[-1]
            dests = [_view(o, state_shape) if last and o.data_type == F32 else None for o in outs[: len(initial)]]
            if reset_after is None:
                states = list(cell.lstm(xp_t, *states, *dests))
            else:
                states = [cell.gru(xp_t, states[0], reset_after, dests[0])]
            hidden_at[t] = states[0]
        for final, state in zip(finals, states):
            final.append(state)
        sequence.append(hidden_at)  # type: ignore[arg-type]
    for final, out in zip(finals, outs):
        if final[0].id != out.id:  # not written in place by the last step
            ops.concat([_view(s, (1, *state_shape)) for s in final], 0, out)
    if return_sequence:
        seq_out = outs[len(initial)]
        if count == 1:
            ops.concat([_view(h, (1, 1, *state_shape)) for h in sequence[0]], 0, seq_out)
            return
        per_direction = []
        for hidden_at in sequence:
            joined = k.scratch(F32, (steps, 1, *state_shape))
            ops.concat([_view(h, (1, 1, *state_shape)) for h in hidden_at], 0, joined)
            per_direction.append(joined)
        ops.concat(per_direction, 1, seq_out)


@kernel("gru")
def gru(
    k: Emitter,
    input: Slot,
    weight: Slot,
    recurrent_weight: Slot,
    bias: Slot | None = None,
    recurrent_bias: Slot | None = None,
    initial_hidden_state: Slot | None = None,
    *,
    out: Slot | list[Slot],
    **attrs: object,
) -> None:
    operands = {"weight": weight, "recurrent_weight": recurrent_weight, "bias": bias, "recurrent_bias": recurrent_bias}
    operands["peephole"] = None
    outs = out if isinstance(out, list) else [out]
    _network(k, input, operands, [initial_hidden_state], outs, **attrs)  # type: ignore[arg-type]


@kernel("lstm")
def lstm(
    k: Emitter,
    input: Slot,
    weight: Slot,
    recurrent_weight: Slot,
    bias: Slot | None = None,
    recurrent_bias: Slot | None = None,
    peephole_weight: Slot | None = None,
    initial_hidden_state: Slot | None = None,
    initial_cell_state: Slot | None = None,
    *,
    out: list[Slot],
    **attrs: object,
) -> None:
    operands = {
        "weight": weight,
        "recurrent_weight": recurrent_weight,
        "bias": bias,
        "recurrent_bias": recurrent_bias,
        "peephole": peephole_weight,
    }
    _network(k, input, operands, [initial_hidden_state, initial_cell_state], out, **attrs)  # type: ignore[arg-type]

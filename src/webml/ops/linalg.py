"""Linear algebra operators: matmul and gemm."""

from __future__ import annotations

from typing import Any

from ..ir import OperandDesc, Value
from .activation import double
from .checks import FLOATS, broadcast_bidirectional, broadcast_unidirectional, check_shape, limit, same_type
from .registry import Call, gradient, op, optional


def shapes(a: Value, b: Value) -> str:
    return f"{list(a.shape)} and {list(b.shape)}"


@op("matmul", family="linalg", a=limit(FLOATS, 2), b=limit(FLOATS, 2), output=limit(FLOATS, 2))
def matmul(call: Call, a: Value, b: Value) -> Value:
    """The matrix product of the last two dimensions; the batch dimensions broadcast bidirectionally."""
    same_type(call, a, b, names=("a", "b"))
    if a.rank < 2 or b.rank < 2:
        raise call.error(f"a and b must have rank 2 or more, got ranks {a.rank} and {b.rank}")
    rows_a, cols_a = a.shape[-2:]
    rows_b, cols_b = b.shape[-2:]
    if cols_a != rows_b:
        raise call.error(f"a's columns ({cols_a}) must equal b's rows ({rows_b}): shapes {shapes(a, b)}")
    batch = broadcast_bidirectional(a.shape[:-2], b.shape[:-2])
    if batch is None:
        raise call.error(f"the batch dimensions of a and b are not broadcastable: shapes {shapes(a, b)}")
    shape = check_shape(call, (*batch, rows_a, cols_b))
    return call.emit({"a": a, "b": b}, OperandDesc(a.data_type, shape))


@op(
    "gemm",
    family="linalg",
    a=limit(FLOATS, 2, 2),
    b=limit(FLOATS, 2, 2),
    c=optional(limit(FLOATS, 0, 2)),
    output=limit(FLOATS, 2, 2),
)
def gemm(
    call: Call,
    a: Value,
    b: Value,
    *,
    c: Value | None = None,
    alpha: Any = 1.0,
    beta: Any = 1.0,
    a_transpose: Any = False,
    b_transpose: Any = False,
) -> Value:
    """alpha * A * B + beta * C, A and B optionally transposed; C broadcasts to [M, N]."""
    same_type(call, a, b, names=("a", "b"))
    alpha = double(call, alpha, "alpha", a.data_type)
    beta = double(call, beta, "beta", a.data_type)
    # WebIDL booleans: any value converts by its truthiness.
    a_transpose, b_transpose = bool(a_transpose), bool(b_transpose)
    shape_a = a.shape[::-1] if a_transpose else a.shape
    shape_b = b.shape[::-1] if b_transpose else b.shape
    if shape_a[1] != shape_b[0]:
        raise call.error(
            f"the columns of a ({shape_a[1]}, a_transpose={a_transpose}) must equal "
            f"the rows of b ({shape_b[0]}, b_transpose={b_transpose})"
        )
    shape = (shape_a[0], shape_b[1])
    if c is not None:
        if not isinstance(c, Value):
            raise call.error(f"c must be an MLOperand, got {type(c).__name__}")
        if broadcast_unidirectional(c.shape, shape) is None:
            raise call.error(f"c shape {list(c.shape)} is not broadcastable to output shape {list(shape)}")
        same_type(call, a, c, names=("a", "c"))
    shape = check_shape(call, shape)
    return call.emit(
        {"a": a, "b": b, "c": c},
        OperandDesc(a.data_type, shape),
        alpha=alpha,
        beta=beta,
        a_transpose=a_transpose,
        b_transpose=b_transpose,
    )


# -- gradients ------------------------------------------------------------------


def _swap_last(g, x):
    """``x`` with its last two dimensions swapped."""
    perm = list(range(len(x.shape)))
    perm[-2:] = perm[-1], perm[-2]
    return g.b.transpose(x, permutation=perm)


@gradient("matmul")
def _matmul_grad(g, a, b):
    # out = a @ b over broadcast batch dimensions: da = dout @ b^T, db = a^T @ dout, summed over broadcasting.
    da = g.b.matmul(g.dout, _swap_last(g, b))
    db = g.b.matmul(_swap_last(g, a), g.dout)
    return {"a": g.unbroadcast(da, a), "b": g.unbroadcast(db, b)}


@gradient("gemm")
def _gemm_grad(g, a, b, c=None, *, alpha, beta, a_transpose, b_transpose):
    # out = alpha * A' @ B' + beta * C with A' = A^T if a_transpose (B' likewise).
    at, bt = a_transpose, b_transpose
    dout = g.dout
    if at:  # dA = (alpha * dout @ B'^T)^T = alpha * B' @ dout^T
        da = g.b.gemm(b, dout, alpha=alpha, beta=0.0, a_transpose=bt, b_transpose=True)
    else:  # dA = alpha * dout @ B'^T
        da = g.b.gemm(dout, b, alpha=alpha, beta=0.0, b_transpose=not bt)
    if bt:  # dB = (alpha * A'^T @ dout)^T = alpha * dout^T @ A'
        db = g.b.gemm(dout, a, alpha=alpha, beta=0.0, a_transpose=True, b_transpose=at)
    else:  # dB = alpha * A'^T @ dout
        db = g.b.gemm(a, dout, alpha=alpha, beta=0.0, a_transpose=not at)
    grads = {"a": da, "b": db}
    if c is not None:
        grads["c"] = g.unbroadcast(dout if beta == 1 else g.b.mul(dout, g.scalar(beta, dout)), c)
    return grads

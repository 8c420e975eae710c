"""ONNX lowerings of the linalg operators."""

from __future__ import annotations

from ...ops.checks import FLOATS
from .lowering import Arg, Lowerer, lowering


@lowering("matmul", a=FLOATS)
def matmul(lw: Lowerer, a: Arg, b: Arg, *, out: Arg) -> None:
    # MatMul broadcasts the batch dimensions as numpy.matmul does (both ranks are at least 2).
    lw.emit("MatMul", [a, b], out)


@lowering("gemm", a=FLOATS)
def gemm(
    lw: Lowerer, a: Arg, b: Arg, c: Arg | None = None, *, out: Arg, alpha, beta, a_transpose, b_transpose
) -> None:
    # Gemm: alpha * A' * B' + beta * C, C unidirectionally broadcast to [M, N] (rank 0 to 2),
    # exactly the spec's operator.  alpha/beta were cast to the input's type: exact as floats.
    lw.emit(
        "Gemm",
        [a, b, c],
        out,
        alpha=float(alpha),
        beta=float(beta),
        transA=int(a_transpose),
        transB=int(b_transpose),
    )

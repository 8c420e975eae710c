"""ONNX lowerings of the linalg operators."""

from __future__ import annotations

from .lowering import Lowerer, Op, lowering

FLOATS = ("float32", "float16")


@lowering("matmul", a=FLOATS)
def matmul(lw: Lowerer, n: Op) -> None:
    # MatMul broadcasts the batch dimensions as numpy.matmul does (both ranks are at least 2).
    lw.emit("MatMul", n.inputs, n.output)


@lowering("gemm", a=FLOATS)
def gemm(lw: Lowerer, n: Op) -> None:
    # Gemm: alpha * A' * B' + beta * C, C unidirectionally broadcast to [M, N] (rank 0 to 2),
    # exactly the spec's operator.  alpha/beta were cast to the input's type: exact as floats.
    a, b, c = n.inputs
    attrs = n.attrs
    lw.emit(
        "Gemm",
        [a, b] if c is None else [a, b, c],
        n.output,
        alpha=float(attrs["alpha"]),
        beta=float(attrs["beta"]),
        transA=int(attrs["a_transpose"]),
        transB=int(attrs["b_transpose"]),
    )

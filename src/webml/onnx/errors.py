"""The error of the ONNX importer."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["OnnxImportError"]


class OnnxImportError(ValueError):
    """An ONNX model webml cannot import; ``.unsupported`` lists (op_type, node name, reason)."""

    def __init__(self, message: str, unsupported: Sequence[tuple[str, str, str]] = ()) -> None:
        self.unsupported = list(unsupported)
        if self.unsupported:
            lines = "\n".join(f"  {op} {name!r}: {reason}" for op, name, reason in self.unsupported)
            message = f"{message}\n{lines}"
        super().__init__(message)

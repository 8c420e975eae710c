"""Where OpenVINO runs less than the ONNX lowering handles (found by the WPT conformance run).

The backend reports the lowering's own table (``@lowering`` argument types)
narrowed by :data:`UNSUPPORTED`, so the builder refuses these before OpenVINO sees them.
"""

from __future__ import annotations

__all__ = ["UNSUPPORTED", "unsupported"]

#: (operator, spec argument name) -> data types OpenVINO's CPU plugin does not run, with why.
UNSUPPORTED: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {}


def unsupported(op: str, argument: str, data_type: str) -> bool:
    """Whether OpenVINO does not run ``op`` with ``argument`` of ``data_type``."""
    entry = UNSUPPORTED.get((op, argument))
    return entry is not None and data_type in entry[0]
